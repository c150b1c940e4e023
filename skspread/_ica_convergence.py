"""How SpreadICA's EM run ends: a singular M-step, the noise ridge, the convergence warnings."""

import math
import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._ica_start import _units_span


@contextmanager
def _rank_deficiency_as_value_error():
    """Turn a singular M-step (a rank-deficient mixing matrix) into a ValueError that says why."""
    try:
        yield
    except np.linalg.LinAlgError as error:
        raise ValueError(
            "The mixing matrix became rank deficient during EM: the data may "
            "have fewer than n_components independent directions. Reduce "
            "n_components or use another init."
        ) from error


# A converged fit whose learned noise is still this many times tol from its
# fixed point (by its last two steps) warns; converged noisy fits end within
# about 2 tol of theirs. A noise
# whose last step is not smaller than the one before is Monte Carlo jitter
# of a fit that passed the resolution check, and does not warn.
_NOISE_DISTANCE_FACTOR = 10


def _noise_crawls(result, tol):
    """Whether an ``_EMResult`` stopped while its learned noise was still moving."""
    return _NOISE_DISTANCE_FACTOR * tol < result.noise_distance < math.inf


# The ridge's end is kept unless the stopped fit is likelier by more than a
# likelihood-ratio test of the one extra parameter (gamma^2) at 5% finds
# significant: chi2_1(0.95) / 2 = 1.92 nats over the data's rows.
_RIDGE_END_MARGIN = 1.92


def _fit_past_noise_ridge(result, start_variance, fit_from, budget, tol, least_variance, n_samples):
    """An EM run stopped on the noise ridge, continued from the ridge's end; the better of the two.

    On noise-free square mixtures the learned noise and the densities' widths
    trade along a ridge that EM crawls down towards gamma^2 = 0 at a rate
    tending to 1, while A's steps look converged, and a mixing matrix
    stopped there can be far from the maximum. When ``result`` stopped
    (converged, frozen or out of its ``budget``) with its learned noise
    still moving (``_noise_crawls``) and below its start ``start_variance``,
    EM runs again (``fit_from(mixing, total_variance, source, budget)``:
    the run's spread copies and draws, the noise still learned) from its
    mixing and densities with the noise at its floor ``least_variance``, the
    end the noise was falling to. The draws are common, so the two ends'
    log-likelihoods compare: the ridge's end is kept unless the stopped fit
    is likelier by more than a likelihood-ratio test of gamma^2 over the
    ``n_samples`` rows finds significant (both ends of a flat stretch of
    ridge are equally good fits). The kept one's ``loglike`` holds the
    E-steps of both. Otherwise, or with fewer than 3 evaluations left in
    ``budget``, ``result`` is returned.
    """
    falling = np.mean(result.total_variance) < np.mean(start_variance)
    if not (falling and _noise_crawls(result, tol)) or budget < 3:
        return result
    floor = np.full_like(np.asarray(result.total_variance, dtype=float), least_variance)
    resumed = fit_from(result.mixing, floor[()], result.prior, budget)
    margin = _RIDGE_END_MARGIN / n_samples
    kept = resumed if resumed.loglike[-1] >= result.loglike[-1] - margin else result
    return kept._replace(loglike=result.loglike + resumed.loglike, from_ridge_end=kept is resumed)


# Span of the features' standard deviations beyond which a fit warns that
# they look like different units (see _warn_if_units_apart).
_UNITS_SPAN = 1e7


def _warn_if_units_apart(X_centred):
    """UserWarning where the features' standard deviations span over ``_UNITS_SPAN``.

    The spread, and an isotropic noise, have one scale for all features (a
    fit on c X is the fit on X, but not one on X times a diagonal). With the
    scales far apart the small features are buried under the spread that the
    large ones set, or, where the large ones dominate the covariance's
    rounding, taken for noise-free. In an audit, two columns a factor 5e7
    apart gave an Amari distance of 0.48 (FastICA 0.003, a frozen warning
    whose advice did not help), and 'diagonal' noise on columns 1e12 apart
    was reported as zero; both fitted well standardised. Spans of 1e6 were
    fitted well.
    """
    # A constant feature (a stuck sensor in a partial_fit block) has no
    # units, and _units_span leaves it out.
    span = _units_span(X_centred)
    if span > _UNITS_SPAN:
        warnings.warn(
            f"The features' standard deviations span a factor {span:.0e}: SpreadICA's "
            "spread (and an isotropic noise) has one scale for all features, which "
            "buries the smallest ones or takes them for noise-free. If the features "
            "are in different units, standardise them first (StandardScaler).",
            UserWarning,
            # _warn_if_units_apart, _warn_unless_converged, (partial_)fit,
            # _fit_context, atomic_fit: the caller's line.
            stacklevel=6,
        )


def _noise_free_advice(result, spread, estimator):
    """Advice to fix the noise at zero where a learned noise ended within 1% of it, else ''.

    A fit whose learned noise goes to zero can still crawl, its densities
    trading with the vanishing noise: on an audit's noise-free mixture of a
    sparse spike train (beyond the densities' grid, so spread-EM fitted it)
    and a Laplace source, EM froze at an Amari distance of 0.07 and a lower
    tol drifted to 0.5, while ``noise_variance=0.0`` converged in 4
    evaluations at 0.004 (FastICA 0.003).
    """
    if not isinstance(estimator.noise_variance, str) or spread is None:
        return ""
    total = np.asarray(result.total_variance, dtype=float)
    if np.max(total - spread.variance) > 0.01 * np.max(total):
        return ""
    return (
        "The learned noise ended near zero: if the data are (nearly) noise-free, "
        "pass noise_variance=0.0, which fixes it there. "
    )


def _warn_unless_converged(result, spread, estimator, X_centred):
    """ConvergenceWarning for a frozen or unfinished EM, a crawling noise, or a degenerate sampler.

    A fit whose small steps crawl in one direction converges when its
    remaining distance is below the statistical resolution (see
    ``_sampling_error_along``); a frozen fit failed that check. A fit on
    features in units far apart says so first (``_warn_if_units_apart``).

    ``result`` is an ``_EMResult``; ``estimator`` gives ``tol``, ``max_iter``
    and ``n_importance_samples_`` (the draws used); ``X_centred`` are the
    rows fitted.
    """
    _warn_if_units_apart(X_centred)
    tol, max_iter = estimator.tol, estimator.max_iter
    if result.stalled:
        cause = (
            "Without spread and with little model noise, EM cannot move "
            "(paper eq 43-45): use spread='gaussian'."
            if spread is None
            else _noise_free_advice(result, spread, estimator)
            + "Lower tol (to a hundredth, say) so that EM runs on towards the "
            "maximum, and raise max_iter if it then stops there (max_iter alone does "
            "not move a frozen fit). A larger spread_scale speeds EM up but costs "
            "statistical efficiency: the fit is then less accurate."
        )
        warnings.warn(
            f"SpreadICA's EM is frozen: after {len(result.loglike)} iterations its "
            f"steps are below tol={tol} but keep their direction (each "
            f"{result.rate:.5f} times the last) and are not small next to the "
            "sampling error of the mixing matrix, so the mixing matrix is still "
            "farther from the maximum of the likelihood than a quarter of its "
            f"statistical error. {cause}",
            ConvergenceWarning,
        )
    elif not result.converged and result.noise_free:
        warnings.warn(
            f"SpreadICA did not converge: after max_iter={max_iter} iterations "
            "of the noise-free path, a quasi-Newton step would still add more "
            f"than tol={tol} nats to the log-likelihood over the rows, or the "
            "densities more than 0.1. Increase max_iter or tol.",
            ConvergenceWarning,
        )
    elif not result.converged:
        warnings.warn(
            f"SpreadICA did not converge: after max_iter={max_iter} EM "
            f"iterations the mixing matrix is still more than tol={tol} "
            "(relative) from the EM fixed point. "
            f"{_noise_free_advice(result, spread, estimator)}Increase max_iter or tol; with "
            "spread=None and a small noise_variance, EM is known to stall (use "
            "a spread).",
            ConvergenceWarning,
        )
    elif _noise_crawls(result, tol) and not result.from_ridge_end:
        # After a kept resume the noise can only creep back up from the
        # ridge's end, along the same flat ridge: on the noise-free mixture of
        # tests/test_ica.py it rises from 3e-4 to 8e-3 in 1700 more EM steps
        # that gain 0.02 nats over its 4000 rows, far below the likelihood
        # ratio test that chose the ridge's end.
        warnings.warn(
            "SpreadICA stopped while its learned noise was still moving: about "
            f"{result.noise_distance:.0%} from where EM was taking it, more than "
            f"{_NOISE_DISTANCE_FACTOR} times tol={tol}. On noise-free square "
            "mixtures the noise and the source densities trade along a ridge "
            "that EM crawls down, and a mixing matrix stopped on it can be far "
            "from the maximum of the likelihood (EM resumed from zero noise, "
            "where the noise fell and max_iter left room, ended less likely). "
            "If the data are (nearly) noise-free, pass noise_variance=0.0; "
            "otherwise raise max_iter or lower tol.",
            ConvergenceWarning,
        )
    n_draws, effective_sample_size = estimator.n_importance_samples_, result.effective_sample_size
    if effective_sample_size < min(10.0, n_draws / 10):
        warnings.warn(
            f"The importance sampler is degenerate: its mean effective sample "
            f"size was {effective_sample_size:.1f} of n_importance_samples="
            f"{n_draws}, so the E-step moments, and the mixing "
            "matrix, are biased. The proposal is too wide for the posterior "
            "in too many directions (tau^2 (A^T A)^-1 is not small next to "
            "1): reduce spread_scale or increase n_importance_samples.",
            ConvergenceWarning,
        )
