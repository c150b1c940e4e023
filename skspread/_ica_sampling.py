"""Importance-sampling E-step of SpreadICA (paper eq 50-56).

The engine behind :class:`skspread.SpreadICA`, and the one private module
that tests and benchmarks import its pieces from: the defensive mixture
proposal for p(z | y) (``_Proposal``, ``_Component``), the prior evaluated
on a (rows, draws) grid (``_log_prior_grid``), the self-normalised weights
and moments (``_importance_posterior``) and the importance draws fixed for a
fit (``_standard_normal_draws``, ``_draw_sets``). A new source density needs
a branch in ``_log_prior_grid``; the weights and moments do not depend on it.
"""

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_factor, cho_solve, cholesky, solve_triangular
from scipy.special import ndtri
from scipy.stats import qmc
from threadpoolctl import ThreadpoolController

from ._ica_exact import exact_posterior
from ._row_noise import row_keys, row_standard_normals
from ._sources import _LAPLACE_SCALE, source_log_density

# Share of the importance draws taken from the likelihood factor N(m(y), V);
# the others come from the Gaussian-source posterior (see _Proposal).
_LIKELIHOOD_DRAW_SHARE = 0.5

# EM rows per independent set of importance draws, and the most sets (see _draw_sets).
_ROWS_PER_DRAW_SET = 256
_MAX_DRAW_SETS = 64

# Below float32's exp overflow (88.7) and where log1p(exp(u)) = u to float32 precision.
_EXP_SAFE = 80.0


class _Proposal:
    """A defensive mixture proposal for p(z | y), proportional to N(z | m(y), V) prod_k p(z_k).

    With tau^2 the total observation variance, m(y) = (A^T A)^-1 A^T y and
    V = tau^2 (A^T A)^-1 (paper eq 53). The plain proposal, the
    likelihood factor N(m(y), V), serves while V is narrow next to the
    unit-variance prior; where A has a small singular value it is many
    times wider than the prior and few draws land where the posterior is.
    The Gaussian-source posterior N(R m(y), W), W = (V^-1 + I)^-1,
    R = W V^-1 = I - W, is never wider than the prior, but alone its
    weights are unbounded, the Laplace prior having heavier tails. A fixed
    share alpha of the draws comes from the first component and the rest
    from the second, and each draw is weighted against the mixture density
    (defensive importance sampling with the balance heuristic):
    w = prod_k p(z_k) / (alpha + (1 - alpha) N(z | R m, W) / N(z | m, V)),
    which is at most prod_k p(z_k) / alpha.

    ``covariance`` is V (the exact E-step's), ``cholesky`` and
    ``narrow_cholesky`` the lower factors L of V and L_W of W: the draws
    are z = m(y) + L eps and z = R m(y) + L_W eps.
    """

    def __init__(self, mixing, total_variance):
        gram = mixing.T @ mixing
        identity = np.eye(gram.shape[0])
        gram_factor = cho_factor(gram, lower=True)
        self.mixing = mixing
        self.total_variance = total_variance
        self.projector = cho_solve(gram_factor, mixing.T).T
        gram_inverse = cho_solve(gram_factor, identity)
        self.covariance = total_variance * gram_inverse
        self.cholesky = cholesky(self.covariance, lower=True)
        self.log_det_gram = 2.0 * float(np.sum(np.log(np.diag(gram_factor[0]))))
        narrow = np.linalg.inv(gram / total_variance + identity)
        narrow = 0.5 * (narrow + narrow.T)
        self.narrow_cholesky = cholesky(narrow, lower=True)
        self.narrow_mean_map = identity - narrow
        # Each component's draws, standardised by the other component:
        # L_W^-1 (m + L eps - R m) and L^-1 (R m + L_W eps - m).
        self.wide_in_narrow = solve_triangular(self.narrow_cholesky, self.cholesky, lower=True)
        self.narrow_in_wide = solve_triangular(self.cholesky, self.narrow_cholesky, lower=True)
        self.wide_shift_in_narrow = solve_triangular(self.narrow_cholesky, narrow, lower=True)
        self.narrow_shift_in_wide = -solve_triangular(self.cholesky, narrow, lower=True)
        self.log_det_ratio = float(
            np.sum(np.log(np.diag(self.cholesky)))
            - np.sum(np.log(np.diag(self.narrow_cholesky)))
        )

    def log_normaliser(self, Y, means):
        """log c(y): the part of log p(y) that does not depend on the sources."""
        n_features, n_components = self.mixing.shape
        residual = Y - means @ self.mixing.T
        return (
            -0.5 * (n_features - n_components) * math.log(2 * math.pi * self.total_variance)
            - 0.5 * self.log_det_gram
            - 0.5 * np.einsum("ij,ij->i", residual, residual) / self.total_variance
        )

    def components(self, means, eps, dtype):
        """The mixture's components for the rows whose m(y) are ``means``.

        The first share of ``eps`` feeds N(m, V), the rest N(R m, W). Each
        component's draws, z = bases[n] + factor @ eps_s, have the mixture's
        log density ratio log(N(z | R m, W) / N(z | m, V)) + log((1 - alpha) / alpha)
        = ratio_rows[n] @ ratio_draws_t[:, s]: with |u|^2 the squared
        standard distance in the draws' own component (|eps_s|^2) and
        |v|^2 = |c_n + G eps_s|^2 that in the other one, the ratio is
        +-(|u|^2 - |v|^2) / 2 plus constants, expanded so that a block of rows
        costs one matrix product (the terms of the row alone and of the draw
        alone ride in its last two columns).
        """
        n_wide = max(1, round(_LIKELIHOOD_DRAW_SHARE * len(eps)))
        share = n_wide / len(eps)
        # Only a two-component mixture uses the ratio; log(1 - alpha) needs alpha < 1.
        constant = self.log_det_ratio
        if share < 1:
            constant += math.log1p(-share) - math.log(share)
        layouts = [
            (
                means,
                self.cholesky,
                eps[:n_wide],
                self.wide_shift_in_narrow,
                self.wide_in_narrow,
                1.0,
            ),
            (
                means @ self.narrow_mean_map.T,
                self.narrow_cholesky,
                eps[n_wide:],
                self.narrow_shift_in_wide,
                self.narrow_in_wide,
                -1.0,
            ),
        ]
        components = []
        for bases, factor, draws, shift_map, other_map, sign in layouts:
            if len(draws) == 0:
                continue
            shifts = means @ shift_map.T
            other_t = (draws @ other_map.T).T
            own_sq = np.einsum("ij,ij->i", draws, draws)
            row_term = -0.5 * sign * np.einsum("ij,ij->i", shifts, shifts)
            draw_term = 0.5 * sign * (own_sq - np.einsum("ij,ij->j", other_t, other_t)) + constant
            components.append(
                _Component(
                    bases=bases,
                    factor=factor,
                    draws=draws,
                    offsets_t=np.ascontiguousarray((draws @ factor.T).T, dtype=dtype),
                    ratio_rows=np.column_stack(
                        [-sign * shifts, row_term, np.ones(len(means))]
                    ).astype(dtype),
                    ratio_draws_t=np.vstack(
                        [other_t, np.ones(len(draws)), draw_term]
                    ).astype(dtype),
                )
            )
        return components, share


class _Component(NamedTuple):
    """One component of the mixture proposal, evaluated for a set of rows.

    ``bases`` (N, K), ``factor`` (K, K) and ``draws`` (S_c, K) give the draws
    z = bases[n] + factor @ draws[s]; ``offsets_t`` is (factor @ draws^T) in
    the E-step's dtype, and ``ratio_rows`` (N, K + 2) times ``ratio_draws_t``
    (K + 2, S_c) gives the mixture's log density ratio at each draw (see
    ``_Proposal.components``).
    """

    bases: np.ndarray
    factor: np.ndarray
    draws: np.ndarray
    offsets_t: np.ndarray
    ratio_rows: np.ndarray
    ratio_draws_t: np.ndarray


def _log_prior_grid(source, means_t, offsets_t, out, scratch, origins=None, positions=None):
    """Write sum_k log p(means[b, k] + offsets[s, k]) into ``out[b, s]``.

    ``means_t`` is (K, B) and ``offsets_t`` is (K, S), both C-contiguous so
    that every source coordinate is one broadcast add over a (B, S) block
    that stays in cache; this (B, S, K) evaluation is the cost of the E-step.
    ``source`` is a fixed prior's name or a learned density, which counts
    its grid cells from ``origins`` (see ``MixtureSourceDensity.grid_origins``)
    and keeps each value's grid position in ``positions`` for its M-step.
    """
    if not isinstance(source, str):
        return source.log_prior_grid(means_t, offsets_t, out, scratch, origins, positions)
    if source == "laplace":
        # -|z| / b - log(2 b), accumulated in place: three passes per coordinate.
        np.add(means_t[0][:, None], offsets_t[0], out=out)
        np.abs(out, out=out)
        for means_k, offsets_k in zip(means_t[1:], offsets_t[1:]):
            np.add(means_k[:, None], offsets_k, out=scratch)
            np.abs(scratch, out=scratch)
            out += scratch
        out *= -1.0 / _LAPLACE_SCALE
        out -= means_t.shape[0] * math.log(2.0 * _LAPLACE_SCALE)
        return out
    out[...] = 0.0
    for means_k, offsets_k in zip(means_t, offsets_t):
        np.add(means_k[:, None], offsets_k, out=scratch)
        out += source_log_density(source, scratch)
    return out


def _subtract_log_mixture_weight(out, component, rows, scratch):
    """out -= softplus(u) for a block of draws: the mixture's weight, log(alpha) aside.

    The mixture proposal's density over the likelihood factor's is
    alpha + (1 - alpha) N(z | R m, W) / N(z | m, V) = alpha (1 + exp(u)),
    u = log((1 - alpha) r / alpha) the log density ratio of ``component``
    at the draws of ``rows``; log(alpha) is the same for every draw and is
    left to the caller. u comes from one matrix product (its row and draw
    terms ride in the product's last two columns); softplus by exp and log1p
    (several times faster than np.logaddexp), through the overflow-safe
    max(u, 0) + log1p(exp(-|u|)) only where u passes float32's exp range.
    """
    log_ratio = np.matmul(component.ratio_rows[rows], component.ratio_draws_t, out=scratch)
    if log_ratio.max() > _EXP_SAFE:
        softplus = np.abs(log_ratio)
        np.negative(softplus, out=softplus)
        np.exp(softplus, out=softplus)
        np.log1p(softplus, out=softplus)
        np.maximum(log_ratio, 0.0, out=log_ratio)
        log_ratio += softplus
    else:
        np.exp(log_ratio, out=log_ratio)
        np.log1p(log_ratio, out=log_ratio)
    out -= log_ratio
    return out


@functools.cache
def _blas_controller():
    """The process's BLAS thread pools (found once numpy's BLAS is loaded)."""
    return ThreadpoolController()


def _one_blas_thread(function):
    """Run ``function`` with BLAS limited to one thread.

    The EM step's matrix products and factorisations are small (a block's
    rows by its draws by K, K by K): a second BLAS thread saves little
    there, and where the cores are busy it waits for one, up to a hundred
    times the product's own time (see benchmarks/results/ica_em_step.md).
    The E-step's elementwise work is single-threaded either way.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _blas_controller().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper


@_one_blas_thread
def _importance_posterior(
    Y, proposal, eps, source, batch_size, dtype, moments=True, histogram=None
):
    """Self-normalised importance sampling of p(z | y) for every row of ``Y``.

    The same standard-normal draws ``eps`` (S, K) serve every row (common
    random numbers), split between the two components of the mixture
    ``proposal``: z_{n,s} = b_n + F eps_s with the component's mean b_n and
    factor F. Weights are prod_k p(z_{n,s,k}) over the mixture-to-
    likelihood-factor density ratio, normalised by log-sum-exp. Rows are
    processed in blocks of about ``batch_size`` so that memory is
    O(batch_size * S). With ``eps`` None, a learned density's posterior is
    computed exactly instead (``_ica_exact``), with the same returns.

    Returns
    -------
    log_marginal : ndarray of shape (n_rows,)
        log p(y_n) = log c(y_n) + log mean_s w_{n,s}, the weights unnormalised.
    posterior_mean : ndarray of shape (n_rows, K) or None
        sum_s w_{n,s} z_{n,s}.
    second_moment : ndarray of shape (K, K) or None
        sum_n sum_s w_{n,s} z_{n,s} z_{n,s}^T. Per component, with
        c_n = sum_s w_{n,s}, e_n = sum_s w_{n,s} eps_s and t_s = sum_n w_{n,s}:
        sum_n (c_n b_n b_n^T + b_n e_n^T F^T + F e_n b_n^T) + F (sum_s t_s eps_s eps_s^T) F^T,
        so that no (N, S, K) or (N, S, K, K) tensor is formed.
    effective_sample_size : float or None
        Mean over rows of 1 / sum_s w_{n,s}^2, between 1 and S.

    With a learned ``source`` density, the normalised weights of the draws
    are also added to ``histogram`` (see ``MixtureSourceDensity.accumulate``),
    the statistics of the density's M-step.
    """
    means = Y @ proposal.projector
    if eps is None:
        log_normaliser = proposal.log_normaliser(Y, means)
        return exact_posterior(
            means, proposal.covariance, source, log_normaliser, moments, histogram
        )
    n_rows = Y.shape[0]
    n_draws, n_components = eps.shape
    components, wide_share = proposal.components(means, eps, dtype)
    sizes = [len(component.draws) for component in components]
    mixed = len(components) > 1
    log_marginal = proposal.log_normaliser(Y, means) - math.log(n_draws)
    if mixed:
        # Every draw's mixture weight has the factor alpha (see _subtract_log_mixture_weight).
        log_marginal -= math.log(wide_share)
    if moments:
        row_shares = np.empty((n_rows, len(components)))
        weighted_draws = [np.empty((n_rows, n_components)) for _ in components]
        draw_totals = [np.zeros(size) for size in sizes]
        inverse_ess_total = 0.0
    # Blocks of about batch_size rows (between 2/3 and 3/2 of it): a short
    # last block would cost a whole block's fixed overhead.
    bounds = np.linspace(0, n_rows, max(1, round(n_rows / batch_size)) + 1).astype(int)
    block = int(np.max(np.diff(bounds)))
    # One contiguous (block, S_c) buffer per component keeps the grid's
    # broadcast adds on unit-stride memory.
    buffers = [
        (np.empty((block, size), dtype=dtype), np.empty((block, size), dtype=dtype))
        for size in sizes
    ]
    learning = moments and histogram is not None
    # A learned density's grid cells and fractions of each value (its M-step's input).
    grid_positions = [
        (
            np.empty((n_components, block, size), dtype=np.intp),
            np.empty((n_components, block, size), dtype=dtype),
        )
        if learning
        else None
        for size in sizes
    ]
    # The normalised weights in float64, for the statistics' sums: in
    # float32 their rounding would also depend on the blocks' sizes (BLAS
    # sums in another order), and batch_size would change the fit.
    normalised_buffers = [np.empty((block, size)) for size in sizes] if moments else []
    origins = [
        None
        if isinstance(source, str)
        else source.grid_origins(component.bases, component.offsets_t)
        for component in components
    ]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = slice(start, stop)
        n_block = stop - start
        blocks = []
        for (out, scratch), positions, component, origin in zip(
            buffers, grid_positions, components, origins
        ):
            log_weights = _log_prior_grid(
                source,
                np.ascontiguousarray(component.bases[rows].T, dtype=dtype),
                component.offsets_t,
                out[:n_block],
                scratch[:n_block],
                origin,
                None if positions is None else [part[:, :n_block] for part in positions[:2]],
            )
            if mixed:
                _subtract_log_mixture_weight(log_weights, component, rows, scratch[:n_block])
            blocks.append(log_weights)
        row_max = np.max([part.max(axis=1) for part in blocks], axis=0)[:, None]
        shares = []
        for log_weights in blocks:
            log_weights -= row_max
            np.exp(log_weights, out=log_weights)
            shares.append(log_weights.sum(axis=1).astype(np.float64))
        totals = np.sum(shares, axis=0)
        log_marginal[rows] += row_max[:, 0] + np.log(totals)
        if moments:
            inverse_totals = 1.0 / totals
            squares = np.zeros(n_block)
            for index, (weights, component) in enumerate(zip(blocks, components)):
                normalised = np.multiply(
                    weights, inverse_totals[:, None], out=normalised_buffers[index][:n_block]
                )
                if learning:
                    cells, fractions = grid_positions[index]
                    source.accumulate(
                        histogram,
                        cells[:, :n_block],
                        fractions[:, :n_block],
                        origins[index],
                        normalised,
                    )
                draw_totals[index] += normalised.sum(axis=0)
                squares += np.einsum("ij,ij->i", normalised, normalised)
                row_shares[rows, index] = shares[index] * inverse_totals
                weighted_draws[index][rows] = normalised @ component.draws
            inverse_ess_total += float(np.sum(1.0 / squares))
    if not moments:
        return log_marginal, None, None, None
    posterior_mean = np.zeros((n_rows, n_components))
    second_moment = np.zeros((n_components, n_components))
    for index, component in enumerate(components):
        bases, factor, draws = component.bases, component.factor, component.draws
        shifts = weighted_draws[index] @ factor.T
        posterior_mean += row_shares[:, index : index + 1] * bases + shifts
        cross = bases.T @ shifts
        second_moment += (bases.T * row_shares[:, index]) @ bases + cross + cross.T
        second_moment += factor @ ((draws.T * draw_totals[index]) @ draws) @ factor.T
    return log_marginal, posterior_mean, second_moment, inverse_ess_total / n_rows


def _standard_normal_draws(n_draws, n_components, rng):
    """Importance draws eps_s ~ N(0, I_K), fixed for a whole fit.

    Scrambled Halton points mapped through the normal quantile function
    (randomised quasi-Monte Carlo) cover the proposal more evenly than
    independent draws, which lowers the error of the self-normalised
    estimates at a given number of draws; the points stay random through
    the scrambling, so the estimator is unchanged in expectation.
    """
    generator = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
    points = qmc.Halton(d=n_components, scramble=True, rng=generator).random(n_draws)
    tiny = np.finfo(float).tiny
    return ndtri(np.clip(points, tiny, 1.0 - np.finfo(float).epsneg))


def _n_draw_sets(n_rows):
    """The number of groups of rows with independent draws (see ``_draw_sets``)."""
    return min(_MAX_DRAW_SETS, max(1, n_rows // _ROWS_PER_DRAW_SET))


def _draw_sets(n_rows, n_draws, n_components, rng):
    """Contiguous groups of rows, each with its own importance draws, fixed for a fit.

    Draws shared by all rows make the E-step's Monte Carlo error common to
    every row, so it does not average out over the rows; along directions
    that the noise hides the EM map contracts slowly, and its fixed point
    moves by that error divided by one minus the rate. Independent draws
    per group of rows let the error average over the groups. With
    ``n_draws`` 0 the groups have no draws (None): the exact E-step.
    """
    bounds = np.linspace(0, n_rows, _n_draw_sets(n_rows) + 1).astype(int)
    return [
        (
            slice(start, stop),
            _standard_normal_draws(n_draws, n_components, rng) if n_draws else None,
        )
        for start, stop in zip(bounds[:-1], bounds[1:])
    ]


def _whitened(Y, mixing, total_variance):
    """Data, mixing and proposal variance with isotropic noise, and the log-Jacobian.

    A per-feature total variance Psi (D,) is whitened away, so that the
    proposal keeps its isotropic form: y / sqrt(Psi) = (A / sqrt(Psi)) z + e
    with e ~ N(0, I), and log p(y) = log p(y / sqrt(Psi)) - sum_d log Psi_d / 2.
    A scalar total variance is returned unchanged, with log-Jacobian 0.
    """
    if np.ndim(total_variance) == 0:
        return Y, mixing, total_variance, 0.0
    scale = np.sqrt(total_variance)
    return Y / scale, mixing / scale[:, None], 1.0, -float(np.sum(np.log(scale)))


def _evaluation_draws(model):
    """The importance draws (S_z, K) of a fitted SpreadICA's transform and score_samples.

    Fixed at fit (by its evaluation seed); None where its E-step is exact.
    """
    if model.n_importance_samples_ == 0:
        return None
    rng = np.random.RandomState(model._evaluation_seed)
    return _standard_normal_draws(model.n_importance_samples_, model.mixing_.shape[1], rng)


def _log_likelihood(X_centred, mixing, total_variance, prior, eps, batch_size, offsets=None):
    """log p(x) per row under N(x | A z, tau^2) and the prior: exact, or by importance sampling.

    ``total_variance`` is tau^2 (a scalar, or one per feature); ``eps`` the
    importance draws (None: exact). With ``offsets`` (N, S_y, D), the mean
    over the copies x + offset (the spread copies of ``score_samples``).
    """
    Y, whitened, variance, log_jacobian = _whitened(X_centred, mixing, total_variance)
    if offsets is None:
        copies = [Y]
    else:
        offsets = _whitened(offsets, mixing, total_variance)[0]
        copies = (Y + offsets[:, copy] for copy in range(offsets.shape[1]))
    proposal = _Proposal(whitened, variance)
    log_likelihood, n_copies = np.zeros(len(X_centred)), 0
    for rows in copies:
        log_likelihood += _importance_posterior(
            rows, proposal, eps, prior, batch_size, np.float64, moments=False
        )[0]
        n_copies += 1
    return log_likelihood / n_copies + log_jacobian


def _spread_log_likelihood(X_centred, model):
    """``SpreadICA.score_samples`` of centred rows: importance sampling per spread copy.

    ``model`` is the fitted SpreadICA (its mixing, noise, spread, prior,
    copies, batch size and evaluation seed).
    """
    spread = model.spread_
    total_variance = np.asarray(model.noise_variance_, dtype=np.float64) + (
        0.0 if spread is None else spread.variance
    )
    offsets = None
    if spread is not None:
        keys = row_keys(X_centred, spread.scale, model._evaluation_seed)
        shape = (model.n_spread_samples, X_centred.shape[1])
        offsets = spread.scale * row_standard_normals(keys, shape)
    log_likelihood = _log_likelihood(
        X_centred, model.mixing_.astype(np.float64), total_variance[()], model._prior,
        _evaluation_draws(model), model.batch_size, offsets,
    )
    # Rows whose squared norm overflows (beyond about 1e154 times the data's
    # scale) have a log-density below float64's range, where the arithmetic
    # gives nan.
    with np.errstate(over="ignore"):
        beyond = ~np.isfinite(np.einsum("ij,ij->i", X_centred, X_centred))
    log_likelihood[beyond & np.isnan(log_likelihood)] = -np.inf
    return log_likelihood


def _floored_noise(noise_variance):
    """A per-feature noise with its zeros raised to 1e-6 of the largest (a scalar as it is).

    A feature without noise pins z to a subspace, a limit the whitening of
    ``_whitened`` cannot take; a tiny share of the largest noise keeps the
    posterior a density.
    """
    noise_variance = np.asarray(noise_variance, dtype=np.float64)
    if noise_variance.ndim:
        noise_variance = np.maximum(noise_variance, 1e-6 * noise_variance.max())
    return noise_variance[()]


def _posterior_mean(X_centred, model):
    """``SpreadICA.transform`` of centred rows: E[z | x] under the fitted model.

    The least-squares sources when the model has no noise; otherwise an
    importance-sampling estimate with the model's evaluation draws.
    """
    noise_variance = np.asarray(model.noise_variance_, dtype=np.float64)
    if not np.any(noise_variance > 0):
        return X_centred @ model.components_.T.astype(np.float64)
    Y, mixing, variance, _ = _whitened(
        X_centred, model.mixing_.astype(np.float64), _floored_noise(noise_variance)
    )
    _, posterior_mean, _, _ = _importance_posterior(
        Y, _Proposal(mixing, variance), _evaluation_draws(model), model._prior, model.batch_size,
        np.float64,
    )
    return posterior_mean
