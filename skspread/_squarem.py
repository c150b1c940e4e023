"""SQUAREM: squared extrapolation for a fixed-point iteration (Varadhan and Roland, 2008)."""

from typing import NamedTuple

import numpy as np


def relative_change(new, old):
    """Frobenius norm of ``new - old`` relative to that of ``old``."""
    return float(np.linalg.norm(new - old) / np.linalg.norm(old))


def remaining_increase(increase, last_increase):
    """The log-likelihood EM has still to gain, from its last two increases.

    EM converges geometrically, each increase about r times the one before,
    so what remains after ``increase`` is increase * r / (1 - r) (Aitken),
    and at least ``increase``. A rate r near 1 (EM is slow along noise
    variances) makes this many times the last increase: in factor analysis,
    stopping on the last increase alone left the noise variances up to 10
    times their sampling error away from the maximum (D=12, K=3, N=20000).
    An increase that does not fall (r >= 1) leaves nothing estimated
    (inf); one that is not positive ends the fit.
    """
    if not np.isfinite(increase) or increase <= 0:
        return increase
    rate = increase / last_increase if 0 < last_increase < np.inf else 0.0
    if rate >= 1:
        return np.inf
    return max(increase, increase * rate / (1.0 - rate))


class SquaremResult(NamedTuple):
    """The outcome of :func:`squarem`.

    ``rate`` is the last estimate of the map's contraction rate,
    |F(F(x)) - F(x)| / |F(x) - x| over two consecutive plain steps (nan
    before two were taken). ``stalled`` says the iteration stopped because
    its steps were small but kept their direction at a rate within
    ``1 - stall_rate`` of 1: x is then not near a fixed point, the map
    barely moves it.
    """

    x: np.ndarray
    n_evaluations: int
    converged: bool
    stalled: bool
    rate: float


def _contraction(previous_step, step):
    """Rate |step| / |previous_step| and whether the two steps point the same way."""
    previous_norm = np.linalg.norm(previous_step)
    norm = np.linalg.norm(step)
    if previous_norm == 0.0 or norm == 0.0:
        return 0.0, False
    cosine = float(np.vdot(previous_step, step)) / (previous_norm * norm)
    # Below this cosine the steps change direction: rounding or Monte Carlo
    # error, not a slow linear approach, dominates them.
    return float(norm / previous_norm), cosine > 0.9


def squarem(
    fixed_point_map,
    start,
    max_evaluations,
    tol,
    failures=(np.linalg.LinAlgError,),
    stall_rate=0.999,
    resolution=0.0,
    on_slow=None,
    resolved=None,
    confirm=False,
    objective=None,
):
    """Iterate ``x <- fixed_point_map(x)`` with SQUAREM acceleration until x stops moving.

    For a smooth deterministic map F (scheme S3 of Varadhan and Roland): from
    x0, x1 = F(x0), x2 = F(x1), r = x1 - x0, v = x2 - 2 x1 + x0 and
    alpha = -|r| / |v|, the extrapolation x' = x0 - 2 alpha r + alpha^2 v is
    stabilised by one more map evaluation and kept only if its fixed-point
    residual |F(x') - x'| is at most that of x1, |x2 - x1|; otherwise the
    plain step x2 is taken. The residual, not an objective, is the
    safeguard, so the map need not be an exact ascent of anything (an EM map
    with Monte Carlo moments is not). A map that ascends an objective (EM
    with an exact E-step, nearly) may pass it as ``objective``: an
    extrapolation that raises it above x1's is then kept too, since along a
    ridge a point nearer the maximum can have a larger residual. The step
    bound grows by 4 each time it is hit and shrinks by 4 when an
    extrapolation is rejected, as in the SQUAREM package's defaults.

    A small step alone does not mean convergence: a map that contracts at a
    rate rho near 1 takes small steps far from its fixed point, which lies
    about |step| / (1 - rho) away. The iteration has converged when that
    distance, relative to |x|, is below ``tol`` (rho the largest of the last
    three estimates), or when the step is below ``resolution`` and changes
    direction from the previous one (it is then the map's own rounding
    error). A small step that keeps its direction at a rate within
    ``1 - stall_rate`` of 1 stops the iteration as stalled.

    Near a rate of 1 that distance cannot be estimated, but it can be set
    against the statistical error of the fixed point itself: along a slow
    direction both are the map's (its step, its sampling error) divided by
    one minus the rate, so their ratio is the step's to the map's error.
    ``resolved(x, step, final)`` (if given) is asked at small steps that
    are not convergence; it returns True when the remaining distance is
    below the statistical resolution (the iteration has then converged),
    False when not, or None when it skipped the check (``final`` is True
    before a stall would stop the iteration: None then means that the
    caller still sees progress, and the iteration goes on). A check counts
    as one evaluation.

    Whenever the step falls below ``tol`` without convergence,
    ``on_slow(x, evaluate)`` (if given) may return another point to continue
    from, for instance the boundary that a map approaches sublinearly; its
    map evaluations go through ``evaluate`` and count.

    Parameters
    ----------
    fixed_point_map : callable
        F, taking and returning an ndarray of one shape.
    start : ndarray
        x0.
    max_evaluations : int
        Most evaluations of F.
    tol : float
        Relative distance to the fixed point at which to stop.
    failures : tuple of exception types
        Exceptions of F at an extrapolated point that reject the
        extrapolation (the plain step is taken instead).
    stall_rate : float
        Contraction rate above which small steps count as a stall.
    resolution : float
        Relative size of the map's rounding error.
    on_slow : callable, optional
        ``on_slow(x, evaluate)``, called at each small step that is not
        convergence (just after ``evaluate(x)``); returns a point to continue
        from, or None to go on from x.
    resolved : callable, optional
        ``resolved(x, step, final)``: whether x is within the statistical
        resolution of the fixed point (None: not checked).
    confirm : bool
        Whether a convergence by the estimated distance must also pass
        ``resolved`` (required then; a skipped check lets the iteration go on).
    objective : callable, optional
        ``objective()``: the objective (to be raised) at the point F was
        last evaluated at.

    Returns
    -------
    result : SquaremResult
    """
    n_evaluations = 0

    def evaluate(x):
        nonlocal n_evaluations
        n_evaluations += 1
        return fixed_point_map(x)

    x = start
    previous_step = None
    rate = float("nan")
    recent_rates = []
    step_bound = 1.0
    while n_evaluations < max_evaluations:
        first = evaluate(x)
        step = first - x
        if previous_step is not None:
            step_rate, steady = _contraction(previous_step, step)
            recent_rates = recent_rates[-2:] + [step_rate]
            rate = max(recent_rates)
            relative_step = np.linalg.norm(step) / np.linalg.norm(x)
            slow = relative_step < tol and not (
                rate < 1.0 and relative_step < tol * (1.0 - rate)
            )
            if slow and on_slow is not None:
                restart = on_slow(x, evaluate)
                if restart is not None:
                    x, previous_step, recent_rates, step_bound = restart, None, [], 1.0
                    continue
            if relative_step < tol:
                stalls = steady and abs(1.0 - step_rate) < 1.0 - stall_rate
                converging = (
                    rate < 1.0 and relative_step < tol * (1.0 - rate) and not stalls
                ) or (not steady and relative_step < resolution)
                # With ``confirm`` the rate, from the last few steps, may hide a
                # slower mode under faster ones: the resolution must agree.
                if converging and not confirm:
                    return SquaremResult(first, n_evaluations, True, False, rate)
                if resolved is not None:
                    verdict = resolved(x, step, stalls)
                    n_evaluations += verdict is not None
                    if verdict:
                        return SquaremResult(first, n_evaluations, True, False, rate)
                    # None at a stall: the caller still sees progress (an exact
                    # objective still rising), so the slow steps go on.
                    stalls = stalls and verdict is not None
                if stalls:
                    return SquaremResult(first, n_evaluations, False, True, step_rate)
        if n_evaluations + 2 > max_evaluations:
            x, previous_step = first, step
            continue
        second = evaluate(first)
        r = step
        v = second - 2.0 * first + x
        v_norm = np.linalg.norm(v)
        if v_norm == 0.0:
            x, previous_step = second, second - first
            continue
        alpha = max(-np.linalg.norm(r) / v_norm, -step_bound)
        if alpha == -step_bound:
            step_bound *= 4.0
        alpha = min(alpha, -1.0)
        extrapolated = x - 2.0 * alpha * r + alpha**2 * v
        first_objective = None if objective is None else objective()
        try:
            stabilised = evaluate(extrapolated)
        except failures:
            stabilised = None
        if stabilised is not None and np.all(np.isfinite(stabilised)) and (
            alpha == -1.0
            or np.linalg.norm(stabilised - extrapolated) <= np.linalg.norm(second - first)
            or (objective is not None and objective() >= first_objective)
        ):
            # alpha = -1 extrapolates to x2 itself, so F(x') is a plain step.
            x, previous_step = stabilised, stabilised - extrapolated
        else:
            # As in the SQUAREM package: back off by the growth factor, not to 1,
            # so that a slow map keeps most of its acceleration.
            step_bound = max(1.0, step_bound / 4.0)
            x, previous_step = second, second - first
    return SquaremResult(x, n_evaluations, False, False, rate)
