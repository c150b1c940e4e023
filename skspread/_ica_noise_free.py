"""SpreadICA's noise-free path: the exact likelihood where the data leave no room for noise.

A learned noise of zero makes the model x = A z + mu deterministic. Where the
data span exactly n_components directions (always when n_components equals
n_features, and with more features when the variance outside the principal
subspace is at rounding level), that model has a density on the data's
subspace, p(x) = |det B| prod_k p_k(b_k^T (x - mu)) with B the unmixing
matrix restricted to the subspace, and its maximum likelihood needs neither
the spread nor importance sampling: it is a smooth optimisation in the K x K
unmixing of the whitened data and the sources' mixture densities.

It alternates, per iteration, (a) the densities' M-step on the histogram of
the current source estimates (the mixture EM of ``MixtureSourceDensity``,
which also sets each source to unit variance), and (b) one quasi-Newton step
on the unmixing W with those densities, W <- (I + E) W, from the relative
gradient G = I + E[psi(y) y^T] and the Hessian's approximation that is exact
at independent sources: for each pair i != j the 2 x 2 system
[[-E psi_i', 1], [1, -E psi_j']] (E_ij, E_ji) = (G_ij, G_ji), its
eigenvalues kept above a floor, and the step halved until the likelihood
does not fall.

Whether the noise is zero is decided before the path is taken (with more
features than sources: the variance outside the principal subspace) or
after (square: a score test). By the heat equation, d/d gamma^2 of log p(x)
at gamma^2 = 0 is (sum_k |b_k|^2 (psi_k' + psi_k^2) + sum_{k != l}
(b_k . b_l) psi_k psi_l) / 2, psi_k = (log p_k)' at y_k = b_k^T (x - mu).
The first sum is what a noise on each source alone would add, and the
learned densities absorb it by widening; the second is not absorbed, and
has mean zero under the noise-free model (the sources are independent and
E psi_k = 0). The test takes t(x) = sum_{k < l} (b_k . b_l) psi_k psi_l:
where its mean over the rows exceeds 1.645 standard errors (one-sided 5%),
noise is present and spread-EM fits it. Leaving out the absorbed sum, which
only adds variance, about doubles the test's power.
"""

import math
from typing import NamedTuple

import numpy as np

from ._ica_em import _EMResult
from ._source_density import MixtureSourceDensity, _compact, _mixture_em_step, _standardised
from ._squarem import squarem

# With more features than sources, the data are noise-free when the mean
# variance outside the principal subspace is below this share of the
# largest eigenvalue: rounding in float32 data leaves about 1e-15.
_ROUNDING_SHARE = 1e-10
# One-sided 5% level of the score test for noise.
_SCORE_TEST_LEVEL = 1.645
# Least eigenvalue of each pair's 2 x 2 Hessian block (its scale is one:
# at independent unit-variance sources, the blocks' off-diagonal entries).
_LEAST_CURVATURE = 1e-2
# SQUAREM on the densities' mixture EM, per iteration: most map
# evaluations and relative distance to the fixed point.
_FIRST_DENSITY_EVALUATIONS = 100
_DENSITY_EVALUATIONS = 10
_DENSITY_TOL = 1e-3
# The densities are converged once an iteration raises the log-likelihood,
# over all rows, by less than this many nats: far below the likelihood-ratio
# scale of their parameters (half a nat per standard error), while their
# mixture EM, crawling along a ridge, can add over a nat per iteration for
# tens of iterations and move the unmixing by a tenth of its error.
_LEAST_RISE = 0.1
# Step halvings before an iteration gives up on raising the likelihood.
_MAX_HALVINGS = 20


class _NoiseFreeFit(NamedTuple):
    """The noise-free maximum likelihood: mixing (D, K), densities, and its record."""

    mixing: np.ndarray
    prior: MixtureSourceDensity
    loglike: list
    converged: bool
    noise_statistic: float


def _noise_free_subspace(X_centred, n_components):
    """The principal subspace (D, K) and its variances if the data are noise-free there, else None.

    Square models always have a noise-free candidate (the score test decides
    after the fit); with more features, the variance outside the subspace
    must be at rounding level.
    """
    n_samples, n_features = X_centred.shape
    covariance = X_centred.T @ X_centred / n_samples
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    if n_components < n_features:
        outside = float(np.mean(np.maximum(eigenvalues[n_components:], 0.0)))
        if outside > _ROUNDING_SHARE * float(eigenvalues[0]):
            return None
    return eigenvectors[:, :n_components], eigenvalues[:n_components]


def _noise_free_run(start, subspace, n_draws, settings):
    """SpreadICA's noise-free fit as an ``_EMResult``, or None where the score test finds noise.

    ``start`` is the fit's ``_FitStart`` from a noise-free start, ``subspace``
    the pair from ``_noise_free_subspace``, ``n_draws`` the importance draws
    that ``transform`` and ``score_samples`` will use, ``settings``
    (max_iter, tol, verbose). The learned noise is zero: its total variance
    is the spread's alone.
    """
    max_iter, tol, verbose = settings
    fit = _fit_noise_free(start.X_centred, start.mixing, *subspace, max_iter, tol, verbose)
    if fit.noise_statistic > _SCORE_TEST_LEVEL:
        return None
    total_variance = start.spread_variance
    if start.noise == "diagonal":
        total_variance = np.full(start.X_centred.shape[1], total_variance)
    return _EMResult(
        fit.mixing,
        total_variance,
        fit.prior,
        fit.loglike,
        effective_sample_size=float(n_draws),
        converged=fit.converged,
        stalled=False,
        rate=0.0,
    )


def _fit_noise_free(X_centred, mixing, basis, variances, max_iter, tol, verbose=0):
    """Maximum likelihood of x = A z in the subspace ``basis``, from ``mixing`` (see module)."""
    scale = np.sqrt(variances)
    whitened = (X_centred @ basis) / scale
    # The start's unmixing, in whitened coordinates: y = pinv(A) x.
    unmixing = np.linalg.pinv(mixing) @ basis * scale
    density, stds = MixtureSourceDensity.fit_sources(whitened @ unmixing.T)
    unmixing /= stds[:, None]
    identity = np.eye(len(unmixing))
    loglike, converged = [], False
    # The first fit of the densities, and those after the unmixing has
    # converged (only they still move), get more evaluations.
    evaluations = _FIRST_DENSITY_EVALUATIONS
    for _ in range(max_iter):
        sources = whitened @ unmixing.T
        density, scales = _fitted_density(density, sources, evaluations)
        unmixing /= scales[:, None]
        sources /= scales
        log_p, first, second = density.log_density_and_scores(sources)
        current = _mean_loglike(unmixing, log_p)
        step, gain = _newton_step(sources, first, second)
        rate = 1.0
        for _ in range(_MAX_HALVINGS):
            candidate = (identity + rate * step) @ unmixing
            value = _mean_loglike(candidate, density.log_density(whitened @ candidate.T))
            if value >= current:
                break
            rate *= 0.5
        else:
            candidate, value = unmixing, current
        unmixing = candidate
        loglike.append(value - float(np.sum(np.log(scale))))
        if verbose:
            print(
                f"[SpreadICA] noise-free iteration {len(loglike)}: "
                f"log-likelihood {loglike[-1]:.6f}"
            )
        rise = len(sources) * (loglike[-1] - loglike[-2]) if len(loglike) > 1 else np.inf
        if gain < tol and rise < _LEAST_RISE:
            converged = True
            break
        evaluations = _FIRST_DENSITY_EVALUATIONS if gain < tol else _DENSITY_EVALUATIONS
    sources = whitened @ unmixing.T
    _, first, _ = density.log_density_and_scores(sources)
    statistic = _noise_score_statistic((unmixing / scale) @ basis.T, first)
    mixing = basis @ (scale[:, None] * np.linalg.inv(unmixing))
    return _NoiseFreeFit(mixing, density, loglike, converged, statistic)


def _fitted_density(density, sources, max_evaluations):
    """The mixture densities' maximum likelihood on ``sources`` (n, K), standardised (SQUAREM)."""
    points, mass = _compact(MixtureSourceDensity.histogram_of(sources))
    n_components = density.n_components

    def em_map(vector):
        current = MixtureSourceDensity.from_vector(vector, n_components)
        weights, means, variances = _mixture_em_step(
            points, mass, current.weights, current.means, current.variances
        )
        return MixtureSourceDensity(weights, means, variances).to_vector()

    result = squarem(em_map, density.to_vector(), max_evaluations, _DENSITY_TOL)
    fitted = MixtureSourceDensity.from_vector(result.x, n_components)
    return _standardised(fitted.weights, fitted.means, fitted.variances)


def _mean_loglike(unmixing, log_p):
    """Mean log-likelihood of the whitened rows: log |det W| + mean sum_k log p_k(y_k)."""
    _, log_det = np.linalg.slogdet(unmixing)
    return float(log_det + np.sum(log_p) / len(log_p))


def _newton_step(sources, first, second):
    """The quasi-Newton relative step E (K, K), zero diagonal, and its predicted gain in nats.

    See the module's docstring; the gain is the log-likelihood over all rows
    that the step would add if the quadratic model were exact.
    """
    n_samples = len(sources)
    gradient = first.T @ sources / n_samples
    gradient += np.eye(len(gradient))
    curvature = -np.mean(second, axis=0)
    a, b = curvature[:, None], curvature[None, :]
    # Each pair's block [[a, 1], [1, b]]: raise its least eigenvalue to the floor.
    least = 0.5 * (a + b) - np.sqrt(0.25 * (a - b) ** 2 + 1.0)
    shift = np.maximum(_LEAST_CURVATURE - least, 0.0)
    a, b = a + shift, b + shift
    determinant = a * b - 1.0
    step = (b * gradient - gradient.T) / determinant
    np.fill_diagonal(step, 0.0)
    # The quadratic model's gain from the full step, over all rows.
    gain = 0.5 * n_samples * float(np.sum(step * gradient))
    return step, gain


def _noise_score_statistic(unmixing, first):
    """The score test's statistic for noise at zero, in standard errors (see the module).

    ``unmixing`` is B (K, D) and ``first`` the sources' psi(y) (n, K): the
    rows' t(x) = sum_{k < l} (b_k . b_l) psi_k(y_k) psi_l(y_l).
    """
    overlaps = unmixing @ unmixing.T
    upper = np.triu_indices(len(overlaps), 1)
    if not len(upper[0]):
        return 0.0
    scores = np.einsum("nk,kl,nl->n", first, np.triu(overlaps, 1), first)
    spread = float(np.std(scores))
    if spread == 0.0:
        return 0.0
    return float(np.mean(scores) / (spread / math.sqrt(len(scores))))
