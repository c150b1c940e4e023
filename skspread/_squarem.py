"""SQUAREM: squared extrapolation for a fixed-point iteration (Varadhan and Roland, 2008)."""

import numpy as np


def relative_change(new, old):
    """Frobenius norm of ``new - old`` relative to that of ``old``."""
    return float(np.linalg.norm(new - old) / np.linalg.norm(old))


def squarem(fixed_point_map, start, max_evaluations, tol, failures=(np.linalg.LinAlgError,)):
    """Iterate ``x <- fixed_point_map(x)`` with SQUAREM acceleration until x stops moving.

    For a smooth deterministic map F (scheme S3 of Varadhan and Roland): from
    x0, x1 = F(x0), x2 = F(x1), r = x1 - x0, v = x2 - 2 x1 + x0 and
    alpha = -|r| / |v|, the extrapolation x' = x0 - 2 alpha r + alpha^2 v is
    stabilised by one more map evaluation and kept only if its fixed-point
    residual |F(x') - x'| is at most that of x1, |x2 - x1|; otherwise the
    plain step x2 is taken. The residual, not an objective, is the
    safeguard, so the map need not be an exact ascent of anything (an EM map
    with Monte Carlo moments is not). The step bound grows by 4 each time it
    is hit, as in the SQUAREM defaults.

    Parameters
    ----------
    fixed_point_map : callable
        F, taking and returning an ndarray of one shape.
    start : ndarray
        x0.
    max_evaluations : int
        Most evaluations of F.
    tol : float
        Stop when one plain step changes x by less than ``tol`` relative to
        its Frobenius norm.
    failures : tuple of exception types
        Exceptions of F at an extrapolated point that reject the
        extrapolation (the plain step is taken instead).

    Returns
    -------
    x : ndarray
        The last accepted iterate.
    n_evaluations : int
        Evaluations of F.
    converged : bool
        Whether a plain step changed x by less than ``tol``.
    """
    n_evaluations = 0

    def evaluate(x):
        nonlocal n_evaluations
        n_evaluations += 1
        return fixed_point_map(x)

    x = start
    step_bound = 1.0
    while n_evaluations < max_evaluations:
        first = evaluate(x)
        if relative_change(first, x) < tol:
            return first, n_evaluations, True
        if n_evaluations + 2 > max_evaluations:
            x = first
            continue
        second = evaluate(first)
        r = first - x
        v = second - 2.0 * first + x
        v_norm = np.linalg.norm(v)
        if v_norm == 0.0:
            x = second
            continue
        alpha = max(-np.linalg.norm(r) / v_norm, -step_bound)
        if alpha == -step_bound:
            step_bound *= 4.0
        alpha = min(alpha, -1.0)
        extrapolated = x - 2.0 * alpha * r + alpha**2 * v
        try:
            stabilised = evaluate(extrapolated)
        except failures:
            stabilised = None
        if stabilised is not None and np.all(np.isfinite(stabilised)) and (
            alpha == -1.0
            or np.linalg.norm(stabilised - extrapolated) <= np.linalg.norm(second - first)
        ):
            # alpha = -1 extrapolates to x2 itself, so F(x') is a plain step.
            x = stabilised
        else:
            step_bound = 1.0
            x = second
    return x, n_evaluations, False
