"""The EM solver of SpreadICA: the EM map (paper eq 43, 50, 51) iterated with SQUAREM."""

from typing import NamedTuple

import numpy as np

from ._ica_sampling import _importance_posterior, _Proposal, _whitened
from ._squarem import relative_change, squarem


# Relative rounding error of an EM step: its moments come from float32 weights.
_E_STEP_RESOLUTION = 1e-6


class _EMStep(NamedTuple):
    """One evaluation of the EM map: the M-step's parameters and the E-step's diagnostics.

    ``total_variance`` is the M-step's per-feature total noise variance
    (D,), Psi_d = (sum_n y_nd^2 - sum_k A_new[d, k] C[d, k]) / N with
    C = sum_n y_n E[z | y_n]^T; the fit uses it only when it learns the noise.
    """

    mixing: np.ndarray
    total_variance: np.ndarray
    log_likelihood: float
    effective_sample_size: float


def _em_step(Y, mixing, total_variance, draw_sets, source, batch_size):
    """One EM map (A, Psi) -> (A_new, Psi_new) (paper eq 43, 50, 51), log-likelihood and ESS.

    ``total_variance`` is tau^2 = sigma^2 + gamma^2, a scalar or one per
    feature (then y and A are whitened by it, so the sampler stays
    isotropic). ``draw_sets`` pairs groups of rows with their importance
    draws (see ``_draw_sets``). The M-step A_new = C S^-1, with
    C = sum y E[z|y]^T and S = sum E[z z^T|y], uses the importance-sampled
    moments in float32, accumulated in float64, and gives the total noise
    E|y - A_new z|^2 / N per feature from the same moments.
    """
    Y_whitened, mixing_whitened, proposal_variance, log_jacobian = _whitened(
        Y, mixing, total_variance
    )
    proposal = _Proposal(mixing_whitened, proposal_variance)
    n_components = mixing.shape[1]
    cross = np.zeros((Y.shape[1], n_components))
    second_moment = np.zeros((n_components, n_components))
    log_likelihood = 0.0
    effective_sample_size = 0.0
    for rows, eps in draw_sets:
        log_marginal, posterior_mean, group_second, group_ess = _importance_posterior(
            Y_whitened[rows], proposal, eps, source, batch_size, np.float32
        )
        cross += Y[rows].T @ posterior_mean
        second_moment += group_second
        log_likelihood += float(np.sum(log_marginal))
        effective_sample_size += group_ess * len(log_marginal)
    new_mixing = np.linalg.solve(second_moment, cross.T).T
    n_rows = len(Y)
    residual = np.einsum("ij,ij->j", Y, Y) - np.einsum("ij,ij->i", new_mixing, cross)
    return _EMStep(
        new_mixing,
        residual / n_rows,
        log_likelihood / n_rows + log_jacobian,
        effective_sample_size / n_rows,
    )


class _EMResult(NamedTuple):
    """The fitted parameters and the record of a run of ``_fit_spread_em``."""

    mixing: np.ndarray
    total_variance: object
    loglike: list
    effective_sample_size: float
    converged: bool
    stalled: bool
    rate: float


def _fit_spread_em(
    Y,
    mixing,
    total_variance,
    draw_sets,
    source,
    max_iter,
    tol,
    batch_size,
    verbose,
    noise="fixed",
    least_variance=0.0,
):
    """Iterate the EM map with SQUAREM acceleration until (A, Psi) stops moving.

    With the draws fixed (common random numbers), the EM map is a
    deterministic smooth function of A, so SQUAREM applies; with finitely
    many importance draws it is not an exact ascent of the estimated
    log-likelihood, but SQUAREM's safeguard is the fixed-point residual.

    ``noise`` is 'fixed' (``total_variance`` kept), 'isotropic' or
    'diagonal' (the total variance learned, one or one per feature, from the
    start ``total_variance``; the M-step's value is raised to
    ``least_variance``, the spread's variance, since the model noise
    gamma^2 = Psi - sigma^2 is not negative). A learned noise enters the
    iterated vector as sqrt(Psi): in the units of A, so that ``tol`` means
    the same in any units, and any extrapolation of it is a valid variance.
    """
    n_features, n_components = mixing.shape
    size = n_features * n_components
    loglike = []
    effective_sample_size = []

    def unpack(x):
        if noise == "fixed":
            return x, total_variance
        variance = np.maximum(x[size:] ** 2, least_variance)
        return x[:size].reshape(n_features, n_components), (
            float(variance[0]) if noise == "isotropic" else variance
        )

    def pack(A, variance):
        if noise == "fixed":
            return A
        return np.concatenate([A.ravel(), np.sqrt(np.atleast_1d(variance))])

    def em_map(x):
        A, variance = unpack(x)
        step = _em_step(Y, A, variance, draw_sets, source, batch_size)
        new_variance = step.total_variance
        if noise == "isotropic":
            new_variance = float(np.mean(new_variance))
        new_variance = np.maximum(new_variance, least_variance)
        loglike.append(step.log_likelihood)
        effective_sample_size.append(step.effective_sample_size)
        if verbose:
            learned = (
                "" if noise == "fixed" else f", mean total noise {np.mean(new_variance):.3e}"
            )
            print(
                f"[SpreadICA] EM iteration {len(loglike)}: spread log-likelihood "
                f"{step.log_likelihood:.6f}, relative change of A "
                f"{relative_change(step.mixing, A):.2e}, effective sample size "
                f"{step.effective_sample_size:.1f}{learned}"
            )
        return pack(step.mixing, new_variance)

    result = squarem(
        em_map, pack(mixing, total_variance), max_iter, tol, resolution=_E_STEP_RESOLUTION
    )
    mixing, total_variance = unpack(result.x)
    return _EMResult(
        mixing,
        total_variance,
        loglike,
        effective_sample_size[-1],
        result.converged,
        result.stalled,
        result.rate,
    )
