"""The EM solver of SpreadICA: the EM map (paper eq 43, 50, 51) iterated with SQUAREM."""

import numpy as np

from ._ica_sampling import _importance_posterior, _Proposal
from ._squarem import relative_change, squarem


def _em_step(Y, mixing, total_variance, draw_sets, source, batch_size):
    """One EM map A -> A_new (paper eq 43, 50, 51), log-likelihood and ESS at A.

    ``draw_sets`` pairs groups of rows with their importance draws (see
    ``_draw_sets``). The M-step A_new = (sum y E[z|y]^T) (sum E[z z^T|y])^-1
    uses the importance-sampled moments in float32, accumulated in float64.
    """
    proposal = _Proposal(mixing, total_variance)
    n_components = mixing.shape[1]
    cross = np.zeros((Y.shape[1], n_components))
    second_moment = np.zeros((n_components, n_components))
    log_likelihood = 0.0
    effective_sample_size = 0.0
    for rows, eps in draw_sets:
        log_marginal, posterior_mean, group_second, group_ess = _importance_posterior(
            Y[rows], proposal, eps, source, batch_size, np.float32
        )
        cross += Y[rows].T @ posterior_mean
        second_moment += group_second
        log_likelihood += float(np.sum(log_marginal))
        effective_sample_size += group_ess * len(log_marginal)
    new_mixing = np.linalg.solve(second_moment, cross.T).T
    return new_mixing, log_likelihood / len(Y), effective_sample_size / len(Y)



def _fit_spread_em(
    Y, mixing, total_variance, draw_sets, source, max_iter, tol, batch_size, verbose
):
    """Iterate the EM map with SQUAREM acceleration until A stops moving.

    With the draws fixed (common random numbers), the EM map is a
    deterministic smooth function of A, so SQUAREM applies; with finitely
    many importance draws it is not an exact ascent of the estimated
    log-likelihood, but SQUAREM's safeguard is the fixed-point residual.

    Returns the mixing matrix, the log-likelihood at each EM evaluation,
    the mean effective sample size of the last E-step and whether the
    change fell below ``tol``.
    """
    loglike = []
    effective_sample_size = []

    def em_map(A):
        new_A, value, ess = _em_step(Y, A, total_variance, draw_sets, source, batch_size)
        loglike.append(value)
        effective_sample_size.append(ess)
        if verbose:
            print(
                f"[SpreadICA] EM iteration {len(loglike)}: spread log-likelihood "
                f"{value:.6f}, relative change of A {relative_change(new_A, A):.2e}, "
                f"effective sample size {ess:.1f}"
            )
        return new_A

    mixing, _, converged = squarem(em_map, mixing, max_iter, tol)
    return mixing, loglike, effective_sample_size[-1], converged
