"""The EM solver of SpreadICA: the EM map (paper eq 43, 50, 51) iterated with SQUAREM."""

import math
from typing import NamedTuple

import numpy as np

from ._ica_exact import empty_component_moments
from ._ica_sampling import _importance_posterior, _one_blas_thread, _Proposal, _whitened
from ._source_density import STATE_WEIGHT, MixtureSourceDensity, start_density, update_density
from ._squarem import relative_change, remaining_increase, squarem


# Relative rounding error of an EM step: its moments come from float32 weights.
_E_STEP_RESOLUTION = 1e-6
# A remaining distance to the EM fixed point below this share of the fixed
# point's sampling error adds sqrt(1 + 0.25^2) - 1 = 3% to the total error.
_RESOLUTION_SHARE = 0.25
# Groups of rows whose M-step terms give the sampling error.
_RESOLUTION_GROUPS = 16
# A fit is converged only once the log-likelihood, over all rows, has less
# than this many nats still to gain: far below the likelihood-ratio scale of
# the parameters (half a nat per standard error), while EM crawling along a
# ridge (the learned densities' mixtures, or a learned noise trading with
# their widths) can add over a nat per iteration for tens of iterations and
# move the mixing by several times its error. The noise-free path counts
# each iteration's rise; the exact E-step's EM the remaining rise.
LEAST_RISE = 0.1


class _Statistics(NamedTuple):
    """The E-step's sufficient statistics of a set of rows, summed over the rows.

    ``cross`` is C = sum_n y_n E[z | y_n]^T (D, K), ``second_moment`` is
    S = sum_n E[z z^T | y_n] (K, K) and ``squares`` is sum_n y_n^2 per
    feature (D,): all the M-step needs (paper eq 50, 51). The
    log-likelihood (with the whitening's log-Jacobian) and the effective
    sample size are summed over the rows too, for the diagnostics. Online
    EM averages these between blocks (see ``_ica_online``).
    """

    n_rows: float
    cross: np.ndarray
    second_moment: np.ndarray
    squares: np.ndarray
    log_likelihood: float
    effective_sample_size: float
    # A learned density's weighted histogram of the posterior draws (0.0 for a fixed prior).
    histogram: object = 0.0

    def scaled(self, factor):
        """Every statistic times ``factor`` (a weight of stochastic approximation)."""
        return _Statistics(*(factor * value for value in self))

    def __add__(self, other):
        return _Statistics(*(mine + theirs for mine, theirs in zip(self, other)))


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
    histogram: object


@_one_blas_thread
def _e_step(Y, mixing, total_variance, draw_sets, source, batch_size, densities=True):
    """The E-step's sufficient statistics of the rows of ``Y`` at (A, Psi) (paper eq 50-56).

    ``total_variance`` is tau^2 = sigma^2 + gamma^2, a scalar or one per
    feature (then y and A are whitened by it, so the sampler stays
    isotropic). ``draw_sets`` pairs groups of rows with their importance
    draws (see ``_draw_sets``). The importance weights are computed in
    float32, and the moments from them in float64. Without ``densities``
    a learned density's statistics are not gathered (the checks' E-steps
    need A's M-step only, and the histogram costs as much as the
    density's evaluation).
    """
    Y_whitened, mixing_whitened, proposal_variance, log_jacobian = _whitened(
        Y, mixing, total_variance
    )
    proposal = _Proposal(mixing_whitened, proposal_variance)
    if isinstance(source, str) or not densities:
        histogram = None
    elif draw_sets[0][1] is None:
        # Exact (no draws): the rows' groups do not matter, and one pass is faster.
        histogram = empty_component_moments(source)
        draw_sets = [(slice(None), None)]
    else:
        histogram = source.empty_histogram()
    n_components = mixing.shape[1]
    cross = np.zeros((Y.shape[1], n_components))
    second_moment = np.zeros((n_components, n_components))
    log_likelihood = 0.0
    effective_sample_size = 0.0
    for rows, eps in draw_sets:
        log_marginal, posterior_mean, group_second, group_ess = _importance_posterior(
            Y_whitened[rows], proposal, eps, source, batch_size, np.float32, histogram=histogram
        )
        cross += Y[rows].T @ posterior_mean
        second_moment += group_second
        log_likelihood += float(np.sum(log_marginal))
        effective_sample_size += group_ess * len(log_marginal)
    return _Statistics(
        float(len(Y)),
        cross,
        second_moment,
        np.einsum("ij,ij->j", Y, Y),
        log_likelihood + len(Y) * log_jacobian,
        effective_sample_size,
        0.0 if histogram is None else histogram,
    )


def _m_step(statistics):
    """The M-step (paper eq 43, 51): A_new = C S^-1 and the per-feature total noise.

    The total noise E|y - A_new z|^2 / N per feature comes from the same
    statistics: (sum_n y_nd^2 - sum_k A_new[d, k] C[d, k]) / N.
    """
    new_mixing = np.linalg.solve(statistics.second_moment, statistics.cross.T).T
    residual = statistics.squares - np.einsum("ij,ij->i", new_mixing, statistics.cross)
    return new_mixing, residual / statistics.n_rows


def _em_step(Y, mixing, total_variance, draw_sets, source, batch_size):
    """One EM map (A, Psi) -> (A_new, Psi_new) (paper eq 43, 50, 51), log-likelihood and ESS.

    The E-step (``_e_step``) at (A, Psi) followed by the M-step (``_m_step``);
    the log-likelihood and the effective sample size are the E-step's means
    over the rows.
    """
    statistics = _e_step(Y, mixing, total_variance, draw_sets, source, batch_size)
    new_mixing, new_total_variance = _m_step(statistics)
    return _EMStep(
        new_mixing,
        new_total_variance,
        statistics.log_likelihood / statistics.n_rows,
        statistics.effective_sample_size / statistics.n_rows,
        statistics.histogram,
    )


def _group_statistics(Y, mixing, total_variance, groups, source, batch_size):
    """Each group's E-step statistics for A's M-step at (A, Psi), and their sum.

    A learned density's statistics are left out (the checks use A's).
    ``groups`` pairs row indices (a slice or an index array) of ``Y`` with
    the importance draws of those rows.
    """
    statistics = [
        _e_step(
            Y[rows], mixing, total_variance, [(slice(None), eps)], source, batch_size, False
        )
        for rows, eps in groups
    ]
    return statistics, sum(statistics[1:], statistics[0])


def _sampling_error_along(Y, mixing, total_variance, draw_sets, source, batch_size, direction):
    """Standard error of the M-step's A = C S^-1 (paper eq 51) along ``direction``, and its log-likelihood.

    ``direction`` is a unit (n_features, n_components) array. The rows are
    split into about ``_RESOLUTION_GROUPS`` groups (each keeping its draw
    set's draws); with C and S sums over the groups, A's deviation is to
    first order sum_g (C_g - A S_g) S^-1, a sum of independent terms whose
    sum is zero, so its variance along ``direction`` is G / (G - 1) times
    the sum of their squared projections. Returns that standard error (in
    A's units) and the E-step's mean log-likelihood.
    """
    splits = max(1, -(-_RESOLUTION_GROUPS // len(draw_sets)))
    parts = [
        (part, eps)
        for rows, eps in draw_sets
        for part in np.array_split(np.arange(len(Y))[rows], splits)
        if len(part)
    ]
    groups, pooled = _group_statistics(Y, mixing, total_variance, parts, source, batch_size)
    new_mixing = _m_step(pooled)[0]
    inverse = np.linalg.inv(pooled.second_moment)
    projections = np.array(
        [np.sum(((g.cross - new_mixing @ g.second_moment) @ inverse) * direction) for g in groups]
    )
    n_groups = len(groups)
    if n_groups < 2:
        return 0.0, pooled.log_likelihood / pooled.n_rows
    error = np.sqrt(n_groups / (n_groups - 1) * np.sum(projections**2))
    return float(error), pooled.log_likelihood / pooled.n_rows


def _learned_total_variance(total_variance, noise, least_variance):
    """The M-step's per-feature total variance as a learned noise keeps it.

    'isotropic' takes its mean over the features, 'diagonal' keeps it; both
    are raised to ``least_variance`` (gamma^2 = Psi - sigma^2 is not negative).
    """
    if noise == "isotropic":
        total_variance = float(np.mean(total_variance))
    return np.maximum(total_variance, least_variance)


class _EMResult(NamedTuple):
    """The fitted parameters and the record of a run of ``_fit_spread_em``."""

    mixing: np.ndarray
    total_variance: object
    prior: object
    loglike: list
    effective_sample_size: float
    converged: bool
    stalled: bool
    rate: float
    # Estimated distance of the learned noise from its fixed point when EM
    # stopped, relative to the noise (0.0 when the noise is fixed).
    noise_distance: float = 0.0
    # Whether the fit went on from the noise ridge's end (``_fit_past_noise_ridge``).
    from_ridge_end: bool = False
    # Whether this is the noise-free path's fit (quasi-Newton, no EM).
    noise_free: bool = False


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

    ``source`` is a fixed prior's name or 'adaptive', a learned density
    (``MixtureSourceDensity``) whose parameters then join the iterated
    vector (scaled by ``STATE_WEIGHT``, so that ``tol`` stays a bound on
    A's change) after A and sqrt(Psi) in units of A's start's RMS entry
    (so that SQUAREM's step lengths do not depend on the data's units): A
    and the densities are coupled (a source's scale trades between A's
    column and its density) and EM alone crawls along that coupling.

    A learned noise that EM drives to zero (noise-free data, most of all
    square mixtures, where the noise and the densities' widths trade along a
    ridge) is approached at a rate tending to 1. When SQUAREM's steps fall
    below ``tol`` without convergence, the boundary gamma^2 = 0 is tried
    (the densities refitted to the sources A's pseudo-inverse gives) and
    kept if its likelihood, with the same draws, is higher.

    Near the deterministic limit (paper eq 43-45: the small refining spread
    from FastICA's start, zero learned noise) EM also crawls along rotations
    of the sources, at rates within 0.01 of 1, where the distance to the
    fixed point, |step| / (1 - rate), cannot be estimated. Such a fit has
    converged when its step is below a quarter of the EM map's sampling
    error along the step (``_sampling_error_along``): the remaining distance
    is then below a quarter of the fixed point's own sampling error, the
    rate cancelling; a stall that fails this check is frozen. The exact
    E-step's map (no draws) is EM on an exact log-likelihood (nearly an
    ascent of it: the densities' M-step can lower it by thousandths of a
    nat over the rows): its fit must
    also have less than ``LEAST_RISE`` nats over the rows still to gain
    (``_likelihood_settled``), and SQUAREM keeps an extrapolation that
    raises it. On 20000 rows of a 3 x 3 mixture with noise of standard
    deviation 0.3, the resolution alone stopped EM on the noise ridge at a
    learned gamma^2 2.8 times the truth and Amari distance 0.054 (FastICA
    0.018), 155 nats below the likelihood of the fit given the true noise;
    now 1.5 times and 0.018, 4 nats above it.
    """
    n_features, n_components = mixing.shape
    size = n_features * n_components
    # 'adaptive' starts from the densities of the start's sources (in Y).
    source, mixing = start_density(source, Y, mixing)
    learning = not isinstance(source, str)
    unit = float(np.sqrt(np.mean(mixing**2))) if learning else 1.0
    n_noise = {"fixed": 0, "isotropic": 1}.get(noise, n_features)
    loglike = []
    effective_sample_size = []

    def unpack(x):
        if noise == "fixed" and not learning:
            return x, total_variance, source
        A = x[:size].reshape(n_features, n_components) * unit
        prior = source
        if learning:
            vector = x[size + n_noise :] / STATE_WEIGHT
            prior = MixtureSourceDensity.from_vector(vector, n_components)
        if noise == "fixed":
            return A, total_variance, prior
        variance = np.maximum((x[size : size + n_noise] * unit) ** 2, least_variance)
        return A, (float(variance[0]) if noise == "isotropic" else variance), prior

    def pack(A, variance, prior):
        if noise == "fixed" and not learning:
            return A
        parts = [A.ravel() / unit]
        if noise != "fixed":
            parts.append(np.sqrt(np.atleast_1d(variance)) / unit)
        if learning:
            parts.append(STATE_WEIGHT * prior.to_vector())
        return np.concatenate(parts)

    def em_map(x):
        A, variance, prior = unpack(x)
        step = _em_step(Y, A, variance, draw_sets, prior, batch_size)
        new_variance = _learned_total_variance(step.total_variance, noise, least_variance)
        new_mixing, prior = update_density(prior, step.histogram, step.mixing)
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
        # Whether x is the last output: two plain steps in a row give a rate.
        plain_steps.append(latest_output[0] is not None and np.array_equal(latest_output[0], x))
        output = pack(new_mixing, new_variance, prior)
        if plain_steps[-1]:
            rise = step.log_likelihood - em_loglike[-1]
            plain_gains.append((len(em_loglike), rise, float(np.linalg.norm(output - x))))
        em_loglike.append(step.log_likelihood)
        latest_output[0] = output
        noise_steps.append(latest_output[0][size : size + n_noise] - x[size : size + n_noise])
        return latest_output[0]

    latest_output = [None]
    noise_steps = []
    plain_steps = []
    # Each EM evaluation's log-likelihood (``loglike`` also holds the checks'),
    # and, for plain steps, the evaluation's index, the rise into its input
    # and the length of its own step.
    em_loglike = []
    plain_gains = []
    tried_at = []

    def try_noise_free(x, evaluate):
        # On square mixtures a learned noise and the densities' widths trade
        # along a ridge, and on noise-free data EM crawls down it to gamma^2 = 0
        # at a rate tending to 1. When steps get small without converging, try
        # the boundary itself: keep it if its (common-draw) likelihood is higher.
        # Tries are spaced geometrically (each after twice as many evaluations
        # as the last), so they cost at most log2(max_iter) evaluations.
        if noise == "fixed" or (tried_at and len(loglike) < 2 * tried_at[-1]):
            return None
        floor = np.full(n_noise, np.sqrt(least_variance) / unit)
        noise_block = slice(size, size + n_noise)
        excess = np.sum(x[noise_block] - floor)
        if np.allclose(x[noise_block], floor) or excess <= 0.0:
            return None
        # Only while the noise is what crawls: its excess over the floor
        # falls faster, relatively, than A moves (x's last map, F(x), is the
        # latest output).
        fall = np.sum(x[noise_block] - latest_output[0][noise_block]) / excess
        if fall <= relative_change(latest_output[0][:size], x[:size]):
            return None
        # Nor where its last two (plain) steps shrink fast enough to stop well
        # above the floor: a noisy fit's noise settles geometrically, while
        # the ridge's rate tends to 1 (a try there cost noisy fits an evaluation).
        if plain_steps[-1]:
            level = x[noise_block]
            heading = _remaining_distance(noise_steps, level) * np.linalg.norm(level)
            if heading < 0.5 * np.linalg.norm(level - floor):
                return None
        tried_at.append(len(loglike))
        likelihood_here = loglike[-1]
        A, _, prior = unpack(x)
        if learning:
            # The densities learned beside the noise are narrower than the
            # sources seen without noise: refit them as at the start.
            prior, A = start_density("adaptive", Y, A)
        boundary = pack(A, np.full(n_noise, least_variance), prior)
        moved = evaluate(boundary)
        return moved if loglike[-1] > likelihood_here else None

    checked_at = []

    def within_resolution(x, step, final):
        # EM crawls (near the deterministic limit, along a rotation of the
        # sources): is the fixed point within the statistical resolution?
        # Along the slow direction the remaining distance |step| / (1 - rate)
        # and the fixed point's sampling error (the map's over 1 - rate)
        # share the unknown rate, so the step is set against the map's error.
        # Checks (one E-step each) are spaced: at least 8 evaluations and a
        # quarter of those so far apart, unless a stall would stop the fit.
        if exact and not _likelihood_settled(plain_gains, len(Y)):
            # The exact map's log-likelihood is exact: while it has more than
            # LEAST_RISE to gain, EM still crawls, however small its steps,
            # and goes on (even where its rate looks like a stall's).
            return None
        if not final and checked_at and len(loglike) < max(checked_at[-1] + 8, 1.25 * checked_at[-1]):
            return None
        checked_at.append(len(loglike))
        A, variance, prior = unpack(x)
        A_step = step[:size].reshape(n_features, n_components) * unit
        distance = float(np.linalg.norm(A_step))
        error, check_loglike = _sampling_error_along(
            Y, A, variance, draw_sets, prior, batch_size, A_step / distance
        )
        loglike.append(check_loglike)
        effective_sample_size.append(effective_sample_size[-1])
        if verbose:
            print(
                f"[SpreadICA] EM step {distance:.2e} against the map's sampling "
                f"error {error:.2e} along it"
            )
        return distance < _RESOLUTION_SHARE * error

    exact = draw_sets[0][1] is None
    result = squarem(
        em_map,
        pack(mixing, total_variance, source),
        max_iter,
        tol,
        resolution=_E_STEP_RESOLUTION,
        on_slow=try_noise_free,
        resolved=within_resolution,
        # A deterministic (exact) map has no Monte Carlo error to blur its
        # rate, and its densities' single EM step per evaluation hides a
        # slow mode under faster ones: its convergence needs the resolution.
        confirm=exact,
        # The exact map's log-likelihood is exact, and EM's objective: an
        # extrapolation that raises it is kept, even where its fixed-point
        # residual grew (along a ridge the residual misjudges progress).
        objective=(lambda: em_loglike[-1]) if exact else None,
    )
    mixing, total_variance, prior = unpack(result.x)
    return _EMResult(
        mixing,
        total_variance,
        prior,
        loglike,
        effective_sample_size[-1],
        result.converged,
        result.stalled,
        result.rate,
        _remaining_distance(noise_steps, result.x[size : size + n_noise]),
    )


def _likelihood_settled(plain_gains, n_rows):
    """Whether the exact EM has less than ``LEAST_RISE`` nats over ``n_rows`` rows still to gain.

    ``plain_gains`` holds, for each evaluation at the last one's output, its
    index, the rise of the mean log-likelihood into its input (the last EM
    step's) and the length of its own step. Two consecutive ones give EM's
    contraction rate r, the ratio of their steps (the largest of the last
    three such ratios); near the maximum the gap
    of the log-likelihood falls as the squared distance, by r^2 per step, so
    what remains after a step that rose by g is g r^2 / (1 - r^2)
    (``remaining_increase`` at that rate). The rises' own ratio would not
    do: the first step after a SQUAREM extrapolation rises from a point off
    EM's path. g is the last positive rise of the last three (a step can
    lower the log-likelihood slightly); three falls in a row are settled.
    Without such a pair, not settled.
    """
    pairs = [
        (before, after)
        for before, after in zip(plain_gains[:-1], plain_gains[1:])
        if after[0] == before[0] + 1
    ]
    if not pairs:
        return False
    # The largest of the last three rates, as SQUAREM takes: the first step
    # after an extrapolation can be shortened by fast modes as they decay.
    rate = max(after[2] / before[2] if before[2] > 0 else 0.0 for before, after in pairs[-3:])
    # The densities' M-step makes the map nearly, not exactly, an ascent: a
    # step can lower the log-likelihood by thousandths of a nat. One such
    # step among rising ones says nothing of what remains (the last rise
    # decides); three in a row say that EM no longer raises it.
    rises = [after[1] for _, after in pairs[-3:] if after[1] > 0]
    if not rises:
        return len(pairs) >= 3
    rise = rises[-1]
    if rate == 0.0:
        return rise < LEAST_RISE / n_rows
    return remaining_increase(n_rows * rise, n_rows * rise / rate**2) < LEAST_RISE


def _remaining_distance(steps, x):
    """|step| / (1 - rate) relative to |x|, from the last two steps of a block of the state.

    SQUAREM's convergence test reads the whole state, where A's many
    coordinates dominate; a learned noise that still crawls along its ridge
    with the densities (noise-free square mixtures) can hide there while A
    has slowed. Infinite when the last step is not smaller than the one
    before; 0.0 for an empty block.
    """
    if x.size == 0 or len(steps) < 2:
        return 0.0
    last, before = np.linalg.norm(steps[-1]), np.linalg.norm(steps[-2])
    if last >= before:
        return math.inf if last > 0 else 0.0
    return float(last / (1.0 - last / before) / max(np.linalg.norm(x), np.finfo(float).tiny))
