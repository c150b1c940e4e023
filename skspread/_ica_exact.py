"""Exact E-step of SpreadICA for learned densities with few sources.

With Gaussian spread and noise, p(y | z) = c(y) N(z | m(y), V) (paper eq 53;
see ``_Proposal``), and a learned density is a mixture of Gaussians per
source (``MixtureSourceDensity``). The prior is then a mixture of Gaussians
over the J^K combinations c = (j_1, ..., j_K) of the sources' components,
N(z | mu_c, D_c) with D_c diagonal and weight omega_c = prod_k pi_{k j_k},
and so is the posterior, in closed form (independent factor analysis,
Attias 1999):

- p(y) = c(y) sum_c omega_c N(m(y) | mu_c, V + D_c);
- p(c | y) proportional to omega_c N(m(y) | mu_c, V + D_c);
- z | y, c ~ N(mu_c + H_c (m(y) - mu_c), D_c - H_c D_c), H_c = D_c (V + D_c)^-1.

The moments of the M-step (paper eq 50, 51) are sums over the combinations,
with no draws and so no Monte Carlo error. The cost per row is
O(J^K K^2), against O(S K) for S importance draws. With J = 3 components
'auto' takes it up to K = 4 sources (81 combinations). Up to K = 6 (729)
one exact E-step still costs less than 256 draws (0.03 s against 0.08 s on
4000 rows), but the densities' single EM step per evaluation has a slow
mode (overlapping components trading mass) that the sampled E-step's
hundred histogram steps hide: fits run until the step is within the sampling
resolution took 35-58 evaluations on the realistic benchmark's 12 x 6 row,
against 4 sampled ones. In the forms above, V may tend to zero (the
deterministic limit) without loss of precision, since D_c has a floor.

Besides the moments of A's M-step, the E-step gives the densities' own
(the posterior mass, mean and second moment of each source's components,
one EM step of each source's mixture).
"""

import math

import numpy as np

# Most combinations of the sources' mixture components for the exact E-step.
MAX_COMBINATIONS = 81
# Rows times combinations per block: the (rows, combinations) arrays stay
# within a few MiB, and the blocks do not depend on batch_size.
_BLOCK_ENTRIES = 2**17


def exact_e_step_applies(n_mixture, n_components):
    """Whether the exact E-step serves K = ``n_components`` sources of J = ``n_mixture`` components."""
    return n_mixture**n_components <= MAX_COMBINATIONS


def empty_component_moments(density):
    """Zeroed (3, K, J) statistics for the exact E-step's density moments."""
    return np.zeros((3,) + density.weights.shape)


class _Combinations:
    """The J^K prior components N(z | mu_c, D_c) and their posterior maps, given V.

    ``weights`` (F, C) give each combination's log p(c, m) as one product with
    the row features [m_a m_b (a <= b), m, 1] (F of them); ``shift`` (C, K)
    and ``gain`` (C, K, K) the posterior means a_c + H_c m, with
    a_c = mu_c - H_c mu_c; ``covariance`` (C, K, K) the posterior covariances;
    ``choice`` (C, K) each combination's component per source.
    """

    def __init__(self, density, wide_covariance):
        n_components, n_mixture = density.weights.shape
        self.choice = np.indices((n_mixture,) * n_components).reshape(n_components, -1).T
        sources = np.arange(n_components)
        mean = density.means[sources, self.choice]
        variance = density.variances[sources, self.choice]
        log_weight = np.log(density.weights[sources, self.choice]).sum(axis=1)
        identity = np.eye(n_components)
        marginal = wide_covariance + variance[:, :, None] * identity
        factor = np.linalg.cholesky(marginal)
        log_det = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
        inverse_factor = np.linalg.solve(factor, np.broadcast_to(identity, marginal.shape))
        precision = np.swapaxes(inverse_factor, 1, 2) @ inverse_factor
        self.gain = variance[:, :, None] * precision
        self.covariance = variance[:, :, None] * identity - self.gain * variance[:, None, :]
        self.shift = mean - np.einsum("ckl,cl->ck", self.gain, mean)
        precision_mean = np.einsum("ckl,cl->ck", precision, mean)
        constant = (
            log_weight
            - 0.5 * n_components * math.log(2.0 * math.pi)
            - 0.5 * log_det
            - 0.5 * np.einsum("ck,ck->c", mean, precision_mean)
        )
        self.upper = np.triu_indices(n_components)
        doubled = np.where(self.upper[0] == self.upper[1], 1.0, 2.0)
        quadratic = -0.5 * precision[:, self.upper[0], self.upper[1]] * doubled
        self.weights = np.vstack([quadratic.T, precision_mean.T, constant[None, :]])

    def features(self, means):
        """The rows' features [m_a m_b (a <= b), m, 1], (N, F)."""
        products = means[:, self.upper[0]] * means[:, self.upper[1]]
        return np.column_stack([products, means, np.ones(len(means))])


def exact_posterior(means, wide_covariance, density, log_normaliser, moments=True, statistics=None):
    """The posterior moments of every row in closed form (see the module's docstring).

    ``means`` (N, K) are the rows' m(y), ``wide_covariance`` is V and
    ``log_normaliser`` (N,) the rows' log c(y) (``_Proposal``).
    Returns what ``_importance_posterior`` returns: log p(y) per row, E[z | y]
    per row, sum_n E[z z^T | y_n] and the effective sample size (infinite:
    no draws). With ``moments``, the densities' statistics (mass, first and
    second moment of each source's components, (3, K, J)) are added to
    ``statistics`` when given.
    """
    n_rows, n_components = means.shape
    combinations = _Combinations(density, wide_covariance)
    n_combinations = len(combinations.choice)
    log_marginal = np.array(log_normaliser, dtype=float)
    if moments:
        posterior_mean = np.empty((n_rows, n_components))
        mass = np.zeros(n_combinations)
        first = np.zeros((n_combinations, n_components))
        second = np.zeros((n_combinations, n_components * n_components))
        gain_flat = combinations.gain.reshape(n_combinations, -1)
    block = max(1, _BLOCK_ENTRIES // n_combinations)
    for start in range(0, n_rows, block):
        rows = slice(start, min(start + block, n_rows))
        block_means = means[rows]
        log_joint = combinations.features(block_means) @ combinations.weights
        peak = log_joint.max(axis=1, keepdims=True)
        log_joint -= peak
        responsibilities = np.exp(log_joint, out=log_joint)
        totals = responsibilities.sum(axis=1)
        log_marginal[rows] += peak[:, 0] + np.log(totals)
        if not moments:
            continue
        responsibilities /= totals[:, None]
        gains = (responsibilities @ gain_flat).reshape(-1, n_components, n_components)
        posterior_mean[rows] = responsibilities @ combinations.shift + np.einsum(
            "nkl,nl->nk", gains, block_means
        )
        mass += responsibilities.sum(axis=0)
        first += responsibilities.T @ block_means
        outer = block_means[:, :, None] * block_means[:, None, :]
        second += responsibilities.T @ outer.reshape(len(block_means), -1)
    if not moments:
        return log_marginal, None, None, None
    # Per combination: sum_n r_nc z_nc = rho_c a_c + H_c M1_c and
    # sum_n r_nc E[z z^T | y_n, c] = rho_c (a_c a_c^T + Sigma_c) + a_c (H_c M1_c)^T
    # + (H_c M1_c) a_c^T + H_c M2_c H_c^T, from rho_c = sum_n r_nc,
    # M1_c = sum_n r_nc m_n and M2_c = sum_n r_nc m_n m_n^T.
    shift, gain = combinations.shift, combinations.gain
    moved = np.einsum("ckl,cl->ck", gain, first)
    source_first = mass[:, None] * shift + moved
    outer_shift = shift[:, :, None] * shift[:, None, :]
    cross = shift[:, :, None] * moved[:, None, :]
    spread = gain @ second.reshape(-1, n_components, n_components) @ np.swapaxes(gain, 1, 2)
    source_second = (
        mass[:, None, None] * (outer_shift + combinations.covariance)
        + cross
        + np.swapaxes(cross, 1, 2)
        + spread
    )
    if statistics is not None:
        n_mixture = density.weights.shape[1]
        chosen = combinations.choice[:, :, None] == np.arange(n_mixture)
        statistics[0] += np.einsum("c,ckj->kj", mass, chosen)
        statistics[1] += np.einsum("ck,ckj->kj", source_first, chosen)
        diagonal = np.diagonal(source_second, axis1=1, axis2=2)
        statistics[2] += np.einsum("ck,ckj->kj", diagonal, chosen)
    return log_marginal, posterior_mean, source_second.sum(axis=0), math.inf
