"""SpreadICA's noise-free path: the exact likelihood where the data leave no room for noise.

A learned noise of zero makes the model x = A z + mu deterministic. Where the
data span exactly n_components directions (always when n_components equals
n_features, and with more features when the variance outside the principal
subspace is negligible: below 1e-6 of the weakest principal variance, or at
float64 rounding next to the largest), that model has a density on the data's
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
[[-E psi_i' E y_j^2, 1], [1, -E psi_j' E y_i^2]] (E_ij, E_ji) = (G_ij, G_ji),
its eigenvalues kept above a floor, and the step halved until the likelihood
does not fall.

Whether the noise is zero is decided before the path is taken (with more
features than sources: the variance outside the principal subspace) or
after (square: a score test). By the heat equation, d/d gamma^2 of log p(x)
at gamma^2 = 0 is (sum_k |b_k|^2 (psi_k' + psi_k^2) + sum_{k != l}
(b_k . b_l) psi_k psi_l) / 2, psi_k = (log p_k)' at y_k = b_k^T (x - mu).
The first sum is what a noise on each source alone would add, and the
learned densities absorb it by widening; the second is not absorbed, and
has mean zero under the noise-free model (the sources are independent and
E psi_k = 0). The test takes t(x) = sum_{k < l} (b_k . b_l) psi_k psi_l
(``_noise_evidence``): spread-EM fits the data where its mean over the rows
exceeds 1.645 standard errors (one-sided 5%), or where the one-sided 95%
bound on gamma^2 that the same rows give exceeds 5% of the weakest
principal variance. The bound matters where the noise is large: the
learned densities then turn near Gaussian, t loses its variance, and its
mean alone would stay near zero. Leaving out the absorbed sum, which only
adds variance, about doubles the test's power. The densities' grid spans
+-20 standard deviations; sources beyond it are left to spread-EM too.
"""

import math
from typing import NamedTuple

import numpy as np

from ._ica_em import LEAST_RISE, _EMResult
from ._ica_exact import exact_e_step_applies
from ._ica_sampling import _floored_noise, _log_likelihood, _standard_normal_draws
from ._ica_start import _principal_axes
from ._source_density import _HALF_WIDTH, N_MIXTURE, MixtureSourceDensity, _compact
from ._source_density import _mixture_em_step
from ._source_density import _standardised
from ._squarem import squarem

# With more features than sources, the data are noise-free when the mean
# variance outside the principal subspace is negligible next to the weakest
# principal variance (the bias of leaving it out is of that relative order)
# or at the rounding level of float64 sums next to the largest.
_NEGLIGIBLE_SHARE = 1e-6
_ROUNDING_SHARE = 1e-12
# A principal direction is whitened only if its variance is above this share
# of the largest (float64 eigenvalues are good to about 1e-16 of it, and
# the noise-free fits of mixings conditioned up to 1e7 held).
_WHITENING_SHARE = 1e-15
# One-sided 5% level of the score test for noise.
_SCORE_TEST_LEVEL = 1.645
# A square model is noise-free only if the score test's 95% bound on gamma^2
# is below this share of the weakest principal variance. On the realistic
# benchmark's noise-free square mixtures the bound was 0.2-2.7% of it; at a
# noise standard deviation of 0.3 or more, 7-37%.
_NOISE_SHARE = 0.05
# Least eigenvalue of each pair's 2 x 2 Hessian block (its scale is one:
# at independent unit-variance sources, the blocks' off-diagonal entries).
_LEAST_CURVATURE = 1e-2
# The densities' start: plain mixture EM steps from the start's shape. Then
# SQUAREM on their mixture EM, per iteration: most map evaluations (the
# first fit's, the others') and relative distance to the fixed point.
_START_DENSITY_STEPS = 5
_FIRST_DENSITY_EVALUATIONS = 100
_DENSITY_EVALUATIONS = 10
_DENSITY_TOL = 1e-3
# Below this predicted gain (nats over the rows) the unmixing is near its
# optimum given the densities, and the densities get the first fit's
# evaluations: what moves the unmixing then is mostly their crawl.
_NEAR_GAIN = 1.0
# Step halvings before an iteration gives up on raising the likelihood.
_MAX_HALVINGS = 20
# Draws of the noisy model's likelihood where the exact E-step does not apply.
_MAX_DRAWS = 1024


class _NoiseFreeFit(NamedTuple):
    """The noise-free maximum likelihood: mixing (D, K), densities, and its record.

    ``noise_statistic`` and ``noise_bound`` are the score test's (see
    ``_noise_evidence``); ``off_grid`` says a source estimate lies beyond the
    densities' grid, where their fit and the likelihood part ways.
    """

    mixing: np.ndarray
    prior: MixtureSourceDensity
    loglike: list
    converged: bool
    noise_statistic: float
    noise_bound: float
    off_grid: bool


class _Subspace(NamedTuple):
    """The principal subspace: basis (D, K), variances (K,), and the mean variance outside."""

    basis: np.ndarray
    variances: np.ndarray
    outside: float


def _principal_subspace(X_centred, n_components):
    """The principal n_components directions of the data, or None where they cannot be whitened.

    None where the K-th variance is at float64 rounding level: such a direction
    cannot be whitened (spread-EM takes the data, as it takes n_components
    > n_features to its error).
    """
    n_features = X_centred.shape[1]
    eigenvalues, eigenvectors = _principal_axes(X_centred)
    if n_components > n_features:
        return None
    if not eigenvalues[n_components - 1] > _WHITENING_SHARE * float(eigenvalues[0]):
        return None
    outside = float(np.mean(np.maximum(eigenvalues[n_components:], 0.0))) if (
        n_components < n_features
    ) else 0.0
    return _Subspace(eigenvectors[:, :n_components], eigenvalues[:n_components], outside)


def _noise_free_run(start, subspace, n_draws, settings):
    """SpreadICA's noise-free fit: an ``_EMResult``, or None, spread-EM's start and a candidate.

    The result is None where the data leave room for noise (see
    ``_set_aside_because``); the noise-free fit's mixing is then a better
    start for spread-EM than FastICA's (its densities are learned, and it is
    the maximum of the likelihood as the noise goes to zero), except where
    its sources reach beyond the densities' grid (None: FastICA's). Where
    the score test left the noise open, the noise-free ``_EMResult`` is
    also returned, a candidate for ``_likelier_run`` (else None).

    ``start`` is the fit's ``_FitStart`` from a noise-free start, ``subspace``
    the ``_principal_subspace``, ``n_draws`` the importance draws that
    ``transform`` and ``score_samples`` will use (0: exact), ``settings`` (max_iter,
    tol, verbose). The learned noise is zero: its total variance is the
    spread's alone.
    """
    max_iter, tol, verbose = settings
    fit = _fit_noise_free(
        start.X_centred, start.mixing, subspace.basis, subspace.variances, max_iter, tol, verbose
    )
    cause = _set_aside_because(fit, start.X_centred.shape[1], subspace)
    total_variance = start.spread_variance
    if start.noise == "diagonal":
        total_variance = np.full(start.X_centred.shape[1], total_variance)
    result = _EMResult(
        fit.mixing,
        total_variance,
        fit.prior,
        fit.loglike,
        effective_sample_size=float(n_draws) if n_draws else math.inf,
        converged=fit.converged,
        stalled=False,
        rate=0.0,
        noise_free=True,
    )
    if not cause:
        return result, None, None
    if verbose:
        print(f"[SpreadICA] noise-free fit set aside ({cause}): spread-EM fits")
    # Square data whose noise the score test left open: the noise-free fit
    # stays a candidate (see _likelier_run).
    open_noise = fit.noise_statistic <= _SCORE_TEST_LEVEL and not fit.off_grid
    candidate = result if subspace.outside == 0.0 and open_noise else None
    return None, (None if fit.off_grid else fit.mixing), candidate


def _likelier_run(staged, candidate, start, batch_size, verbose):
    """Spread-EM's ``_DrawsRun``, or the noise-free one, ``candidate``, where the data favour it.

    Where the score test neither finds noise nor rules it out (square data,
    a small sample), spread-EM fits from the noise-free fit, but its learned
    noise may take up what the mixture densities miss, or crawl toward zero:
    on 2000 noise-free rows of four Laplace or t(3) sources it ended with a
    noise variance of 0.08-0.19 and Amari distances 1.6-2.4 times the
    noise-free fit's, and with features in units 1e4 apart at 1.1 against
    0.053. Both are densities of the data: the one with the higher
    log-likelihood is kept, the noise-free one unless the learned noise
    gains over a nat in all per noise parameter (one, or one per feature
    for 'diagonal', as AIC counts). The
    noisy model's likelihood is the E-step's marginal without spread,
    exact for the combinations the exact E-step takes, else with 1024
    draws.
    """
    if candidate is None:
        return staged
    X_centred, result = start.X_centred, staged.result
    noise = np.maximum(np.asarray(result.total_variance) - start.spread_variance, 0.0)
    noise_free = _square_log_likelihood(
        X_centred, candidate.result.mixing, candidate.result.prior
    )
    if np.any(noise > 0):
        n_components = result.mixing.shape[1]
        eps = None
        if not exact_e_step_applies(N_MIXTURE, n_components):
            eps = _standard_normal_draws(_MAX_DRAWS, n_components, np.random.RandomState(0))
        noisy = float(
            np.mean(
                _log_likelihood(
                    X_centred, result.mixing, _floored_noise(noise), result.prior, eps, batch_size
                )
            )
        )
    else:
        noisy = _square_log_likelihood(X_centred, result.mixing, result.prior)
    if len(X_centred) * (noise_free - noisy) < -noise.size:
        return staged
    if verbose:
        print(
            f"[SpreadICA] the noise-free fit is kept: log-likelihood per row {noise_free:.6f}, "
            f"spread-EM's {noisy:.6f} (mean learned noise variance {np.mean(noise):.3g})"
        )
    return candidate


def _square_log_likelihood(X_centred, mixing, prior):
    """Mean log p(x) = log |det B| + sum_k log p_k(b_k^T x) of a square noise-free model, B = A^-1."""
    unmixing = np.linalg.inv(mixing)
    return _mean_loglike(unmixing, prior.log_density(X_centred @ unmixing.T))


def _set_aside_because(fit, n_features, subspace):
    """Why spread-EM must fit instead of the noise-free ``fit`` ('' if it need not).

    With more features than sources, the variance outside the principal
    ``subspace`` tells noise from none; with as many, only the score test.
    """
    square = len(subspace.variances) == n_features
    weakest = float(subspace.variances[-1])
    negligible = max(
        _NEGLIGIBLE_SHARE * weakest, _ROUNDING_SHARE * float(subspace.variances[0])
    )
    if not square and subspace.outside > negligible:
        return "the data vary outside the principal subspace"
    if fit.off_grid:
        return "the sources reach beyond the densities' grid"
    if square and fit.noise_statistic > _SCORE_TEST_LEVEL:
        return f"the score test finds noise at {fit.noise_statistic:.2f} standard errors"
    if square and fit.noise_bound > _NOISE_SHARE * weakest:
        return (
            f"noise variances up to {fit.noise_bound / weakest:.1%} of the weakest principal "
            "variance are not ruled out"
        )
    return ""


def _fit_noise_free(X_centred, mixing, basis, variances, max_iter, tol, verbose=0):
    """Maximum likelihood of x = A z in the subspace ``basis``, from ``mixing`` (see module)."""
    scale = np.sqrt(variances)
    whitened = (X_centred @ basis) / scale
    # The start's unmixing, in whitened coordinates: y = pinv(A) x.
    unmixing = np.linalg.pinv(mixing) @ basis * scale
    # A few plain EM steps from the start's shape; SQUAREM takes it on.
    density, stds = MixtureSourceDensity.fit_sources(
        whitened @ unmixing.T, n_iterations=_START_DENSITY_STEPS, heavy_tailed_start=True
    )
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
        if gain < tol and abs(rise) < LEAST_RISE:
            converged = True
            break
        evaluations = _FIRST_DENSITY_EVALUATIONS if gain < _NEAR_GAIN else _DENSITY_EVALUATIONS
    sources = whitened @ unmixing.T
    _, first, _ = density.log_density_and_scores(sources)
    statistic, bound = _noise_evidence((unmixing / scale) @ basis.T, first)
    off_grid = bool(np.max(np.abs(sources)) > _HALF_WIDTH)
    mixing = basis @ (scale[:, None] * np.linalg.inv(unmixing))
    return _NoiseFreeFit(mixing, density, loglike, converged, statistic, bound, off_grid)


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
    # The pair (i, j)'s block [[a, 1], [1, b]] has a = -E psi_i' E y_j^2 and
    # b = -E psi_j' E y_i^2 (the second moments are one for the densities'
    # unit-variance sources, but not where the sources' tails pass the grid).
    curvature = -np.mean(second, axis=0)
    moments = np.mean(np.square(sources), axis=0)
    a = curvature[:, None] * moments[None, :]
    b = a.T
    # Raise each block's least eigenvalue to the floor.
    least = 0.5 * (a + b) - np.sqrt(0.25 * (a - b) ** 2 + 1.0)
    shift = np.maximum(_LEAST_CURVATURE - least, 0.0)
    a, b = a + shift, b + shift
    determinant = a * b - 1.0
    step = (b * gradient - gradient.T) / determinant
    np.fill_diagonal(step, 0.0)
    # The quadratic model's gain from the full step, over all rows.
    gain = 0.5 * n_samples * float(np.sum(step * gradient))
    return step, gain


def _noise_evidence(unmixing, first):
    """The score test for noise at zero: its statistic and an upper bound on gamma^2.

    ``unmixing`` is B (K, D) and ``first`` the sources' psi(y) (n, K); the
    rows' t(x) = sum_{k < l} (b_k . b_l) psi_k(y_k) psi_l(y_l) (see the
    module). The statistic is mean(t) in standard errors. To first order
    E_gamma[t] = gamma^2 var_0(t) (t is part of the score, uncorrelated with
    the rest), so mean(t) / var(t) estimates gamma^2 with standard error
    1 / sqrt(n var(t)); the bound adds 1.645 of them (one-sided 95%). When
    the learned densities are near Gaussian, t has little variance and the
    bound is wide: the data then cannot tell noise from signal, the case
    where the statistic alone would miss a large noise.
    """
    overlaps = np.triu(unmixing @ unmixing.T, 1)
    if not np.any(overlaps):
        return 0.0, 0.0
    scores = np.einsum("nk,kl,nl->n", first, overlaps, first)
    variance = float(np.var(scores))
    if variance == 0.0:
        return 0.0, 0.0
    statistic = float(np.mean(scores)) / math.sqrt(variance / len(scores))
    bound = (float(np.mean(scores)) + _SCORE_TEST_LEVEL * math.sqrt(variance / len(scores)))
    return statistic, bound / variance
