"""How many importance draws SpreadICA's E-step takes: a fixed number, or 'auto'.

With 'auto', learned densities of at most 4 sources with a learned noise
take the exact E-step instead (``_ica_exact``): no draws, one stage.
With 'auto' the fit runs in stages, the first with 128 or 256 draws per row
(``_auto_first_draws``). In each, EM (``_fit_spread_em``: SQUAREM
on a deterministic map) runs with the stage's draws fixed, to its fixed
point or for at most ``_AUTO_STAGE_ITER`` evaluations, and only then may the
draws change, so that every SQUAREM cycle sees one map. At a stage's end x
the Monte Carlo error of the EM map is set against its sampling error,
both from the M-step's A = C S^-1 (paper eq 51) at x:

- Monte Carlo error: |A(D) - A(D')| / sqrt(2), with D the stage's draws
  and D' as many fresh ones, independent of D;
- sampling error: the standard error of A over the G groups of rows that
  have their own draws (``_draw_sets``), sd_g(A_g) / sqrt(G), A_g the
  M-step on group g's statistics alone.

Along a direction where EM is slow, both errors of the fixed point are the
map's divided by one minus EM's rate there (the missing information
inflates the estimator's variance by the same factor), so their ratio is
judged on the map, and on a part of the row groups (the ratio does not
depend on the rows' number). The check does not see the self-normalised
estimates' bias, about one over the effective sample size (ESS) and common
to D and D', so the draws must also keep a least mean ESS per row. When
the Monte Carlo error exceeds a quarter of the sampling error (it would
then add more than 3% to the total error) or the ESS is below its least,
EM resumes from x with D, D' and, where the ratio asks for more (the error
falling as one over the square root of the draws, the ESS growing as
them), further fresh draws: a power of two times D's, up to a cap. Once
the draws pass the check (or reach the cap), the last stage runs to
convergence or ``max_iter``.

A stage's EM that stopped while its learned noise still fell along the
noise ridge runs again, with the stage's draws, from the ridge's end (zero
noise), and the likelier end is kept (``_fit_past_noise_ridge``).
"""

import math
from typing import NamedTuple

import numpy as np

from ._ica_exact import exact_e_step_applies
from ._ica_convergence import _fit_past_noise_ridge
from ._ica_em import _fit_spread_em, _group_statistics, _m_step
from ._ica_sampling import _draw_sets, _n_draw_sets
from ._source_density import N_MIXTURE

# 'auto': the first stage's draws, fewer where the data fill enough draw
# sets (see _auto_first_draws), and the most.
_AUTO_FIRST_DRAWS = 256
_AUTO_FEWER_FIRST_DRAWS = 128
_AUTO_MAX_DRAWS = 1024
# Independent draws over the draw sets together at which the first stage may
# take the fewer draws.
_AUTO_FIRST_TOTAL_DRAWS = 8192
# Least mean effective sample size per row at which 'auto' keeps its draws.
# The self-normalised estimates' bias, about 1 / ESS, escapes the check of
# two independent draw sets (it is common to both): on the realistic
# benchmark's noisy rows fits were as accurate at an ESS of 50 as at 200,
# and at 25 EM drifted away (Amari 0.07-0.18 against 0.04-0.06).
_AUTO_LEAST_ESS = 64
# The check's E-steps run on at most this many of the row groups (evenly
# spread): both errors fall as one over the square root of the rows, so
# their ratio does not depend on how many groups take part.
_CHECK_GROUPS = 8
# EM evaluations per stage while the draws may still grow (the last stage
# has the rest of max_iter): the check comes at a fixed point or after these.
_AUTO_STAGE_ITER = 20
# Largest ratio of the EM map's Monte Carlo error to its sampling error at
# which the draws are kept: sqrt(1 + 0.25^2) - 1 = 3% more total error.
_AUTO_ERROR_SHARE = 0.25


def _exact(n_importance_samples, source, n_components, noise):
    """Whether 'auto' takes the exact E-step: learned densities and noise, few combinations.

    The exact E-step's densities take one EM step per evaluation, whose
    slow mode a converged fit must wait out (see ``_ica_exact``). With a
    fixed noise, on make_ica(5000, 10, 5) at gamma = 0.3 with the true noise
    given, exact fits stopped as frozen after 32-35 evaluations, against 4
    sampled ones (whose densities take 100 steps on each histogram), so a
    fixed noise samples.
    ``noise`` is 'fixed' or a learned noise's kind.
    """
    return (
        n_importance_samples == "auto"
        and source == "adaptive"
        and noise != "fixed"
        and exact_e_step_applies(N_MIXTURE, n_components)
    )


def _auto_first_draws(n_rows):
    """'auto''s first draws per row: 128 where the draw sets hold 8192 draws together, else 256.

    Each group of rows shares its draws (``_draw_sets``), so the Monte Carlo
    error is common within a group and averages only over the groups. With
    too few independent draws in all, that error's dependence on A slowed
    EM along a rotation of the sources (rate 0.93-0.97 against 0.74): on
    the realistic benchmark's 12x6 row (4000 rows, 15 groups) 2 of 5 fits
    took 45 and 54 evaluations at 128 draws (1920 in all), against 4 and 11
    at 256 (3840); in groups of 64 rows (62 groups, 7936 in all) 128 draws
    took 4 and 11 again, and the noisy paper row's 20000 rows (64 groups,
    8192) took 4 evaluations at 128 as at 256, at half the cost and the same
    accuracy. Smaller groups cost more in calls than they save in draws on
    such data, so only data that fill the groups take the fewer draws.
    """
    enough = _n_draw_sets(n_rows) * _AUTO_FEWER_FIRST_DRAWS >= _AUTO_FIRST_TOTAL_DRAWS
    return _AUTO_FEWER_FIRST_DRAWS if enough else _AUTO_FIRST_DRAWS


def _first_draws(n_importance_samples, source, n_components, noise, n_rows):
    """The draws a fit on ``n_rows`` rows starts with: an int's, 'auto''s, or 0 where exact."""
    if _exact(n_importance_samples, source, n_components, noise):
        return 0
    if n_importance_samples == "auto":
        return _auto_first_draws(n_rows)
    return n_importance_samples


def _fixed_draws(n_importance_samples):
    """The draws of a fit that does not adapt them: an int's, or 'auto''s cap."""
    if n_importance_samples == "auto":
        return _AUTO_MAX_DRAWS
    return n_importance_samples


def _grown_draws(n_draws, error, sampling_error, effective_sample_size):
    """The draws after a failed check: the power of two times ``n_draws`` that passes it.

    The Monte Carlo error falls as one over the square root of the draws
    and the ESS grows as them: the doublings that bring both within their
    bounds at once (at least one, at most up to the cap).
    """
    shortfall = 1.0
    if math.isnan(effective_sample_size):
        # Degenerate weights: as many as may be.
        shortfall = math.inf
    elif effective_sample_size < _AUTO_LEAST_ESS:
        shortfall = _AUTO_LEAST_ESS / max(effective_sample_size, 1.0)
    if error > _AUTO_ERROR_SHARE * sampling_error:
        ratio = error / (_AUTO_ERROR_SHARE * sampling_error) if sampling_error > 0 else math.inf
        shortfall = max(shortfall, ratio**2)
    doublings = max(1, math.ceil(math.log2(min(shortfall, _AUTO_MAX_DRAWS))))
    return min(_AUTO_MAX_DRAWS, n_draws * 2**doublings)


class _DrawsRun(NamedTuple):
    """An ``_EMResult`` over the stages, and the draws per row of the last stage."""

    result: object
    n_draws: int


def _monte_carlo_error(Y, mixing, total_variance, prior, draw_sets, fresh, batch_size):
    """The EM map's Monte Carlo and sampling errors at (A, Psi), on some of the row groups.

    ``draw_sets`` and ``fresh`` pair the same groups of rows with
    independent draws; at most ``_CHECK_GROUPS`` of the groups take part.
    Both errors are Frobenius norms of A's M-step on those groups' rows,
    relative to |A| (see the module's docstring).
    """
    chosen = np.unique(np.round(np.linspace(0, len(draw_sets) - 1, _CHECK_GROUPS)).astype(int))
    state = (Y, mixing, total_variance)
    groups, pooled = _group_statistics(*state, [draw_sets[i] for i in chosen], prior, batch_size)
    _, other = _group_statistics(*state, [fresh[i] for i in chosen], prior, batch_size)
    norm = np.linalg.norm(mixing)
    error = np.linalg.norm(_m_step(pooled)[0] - _m_step(other)[0]) / (math.sqrt(2.0) * norm)
    if len(groups) < 2:
        # One group: no sampling error to compare with; the draws grow to the cap.
        sampling_error = 0.0
    else:
        per_group = np.array([_m_step(group)[0] for group in groups])
        deviation = np.sqrt(np.sum((per_group - per_group.mean(axis=0)) ** 2) / (len(groups) - 1))
        sampling_error = deviation / (math.sqrt(len(groups)) * norm)
    return float(error), float(sampling_error)


def _fit_with_draws(Y, start, n_importance_samples, source, settings):
    """EM with ``n_importance_samples`` draws per row (an int), or 'auto' (see module).

    ``start`` is the fit's ``_FitStart`` (mixing, total variance, noise, the
    generator of the draws); ``settings`` are (max_iter, tol, batch_size,
    verbose). ``result.loglike`` of the returned ``_DrawsRun`` counts every
    EM evaluation, and so does ``max_iter``; the checks between stages
    (E-steps on a part of the rows) are not counted.
    """
    max_iter, tol, batch_size, verbose = settings
    n_components = start.n_components
    n_draws = _first_draws(n_importance_samples, source, n_components, start.noise, len(Y))
    draw_sets = _draw_sets(len(Y), n_draws, n_components, start.rng)
    adaptive = n_importance_samples == "auto" and n_draws > 0
    mixing, total_variance, prior = start.mixing, start.total_variance, source
    loglike = []
    settled = not adaptive
    from_ridge_end = False

    def fit_from(mixing, total_variance, prior, budget):
        return _fit_spread_em(
            Y,
            mixing,
            total_variance,
            draw_sets,
            prior,
            budget,
            tol,
            batch_size,
            verbose,
            noise=start.noise,
            least_variance=start.least_variance,
        )

    def stage_budget(n_used):
        # A SQUAREM run's evaluations: the rest of max_iter, or a stage's.
        budget = max_iter - n_used
        return budget if settled else min(budget, _AUTO_STAGE_ITER)

    while True:
        result = fit_from(mixing, total_variance, prior, stage_budget(len(loglike)))
        result = _fit_past_noise_ridge(
            result,
            total_variance,
            fit_from,
            stage_budget(len(loglike) + len(result.loglike)),
            tol,
            start.least_variance,
            len(start.X_centred),
        )
        loglike += result.loglike
        from_ridge_end = from_ridge_end or result.from_ridge_end
        mixing, total_variance, prior = result.mixing, result.total_variance, result.prior
        if settled or len(loglike) >= max_iter:
            break
        fresh = _draw_sets(len(Y), n_draws, n_components, start.rng)
        error, sampling_error = _monte_carlo_error(
            Y, mixing, total_variance, prior, draw_sets, fresh, batch_size
        )
        effective_sample_size = result.effective_sample_size
        if verbose:
            print(
                f"[SpreadICA] {n_draws} importance draws per row: relative Monte Carlo "
                f"error of the EM map {error:.1e}, sampling error {sampling_error:.1e}, "
                f"effective sample size {effective_sample_size:.1f}"
            )
        if (
            error <= _AUTO_ERROR_SHARE * sampling_error
            and effective_sample_size >= _AUTO_LEAST_ESS
        ):
            settled = True
            if result.converged or result.stalled:
                break
            continue
        grown = _grown_draws(n_draws, error, sampling_error, effective_sample_size)
        parts = [draw_sets, fresh]
        if grown > 2 * n_draws:
            parts.append(_draw_sets(len(Y), grown - 2 * n_draws, n_components, start.rng))
        draw_sets = [
            (sets[0][0], np.vstack([eps for _, eps in sets])) for sets in zip(*parts)
        ]
        n_draws = grown
        settled = n_draws >= _AUTO_MAX_DRAWS
    return _DrawsRun(result._replace(loglike=loglike, from_ridge_end=from_ridge_end), n_draws)
