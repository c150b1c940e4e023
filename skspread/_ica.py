"""Spread-EM for deterministic and noisy linear ICA (Zhang et al., 2020, section 4.1)."""

import math
import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_factor, cho_solve, cholesky, solve_triangular
from scipy.special import ndtri
from scipy.stats import qmc
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import SpreadScoreMixin
from ._sources import _LAPLACE_SCALE, sample_sources, source_log_density
from ._validation import resolve_spread
from .spread import BaseSpread, GaussianSpread

__all__ = ["SpreadICA"]

_ICA_SOURCES = ("laplace", "logistic")


# From the FastICA start the spread adds at most this share of the weakest
# source's variance to its posterior (see _auto_spread_scale).
_REFINING_SPREAD_SHARE = 0.02


def _auto_spread_scale(X, n_components, noise_variance, init):
    """The spread 'auto' picks for a start: small to refine, the paper's to travel.

    From a start that EM must move far from (PCA, random, a given array),
    the paper's rule sigma = max(0.001, 2.5 sqrt(mean(A A^T))), the data
    covariance standing in for A A^T + gamma^2 I, keeps EM out of the
    freezing of the deterministic limit. It is capped so that
    tau^2 = sigma^2 + gamma^2 <= lambda_K(A^T A) (the K-th eigenvalue of the
    data covariance minus gamma^2 standing in), which keeps the importance
    proposal's likelihood factor V = tau^2 (A^T A)^-1 no wider than the
    unit-variance source prior: for square or ill-conditioned mixings the
    paper's rule left the single-Gaussian proposal of the spec a handful of
    effective draws and the fit drifted away (the mixture proposal that
    replaced it bounds the weights, but a wide V still spends half of the
    draws where the posterior is not).

    From FastICA's consistent start EM only refines, and the spread costs
    statistical efficiency that grows with sigma. There
    sigma^2 = 0.02 (lambda_K - gamma^2): the spread adds at most 2% of the
    weakest source's variance to its posterior.
    """
    covariance = np.atleast_2d(np.cov(X, rowvar=False))
    smallest_signal = np.linalg.eigvalsh(covariance)[-n_components] - noise_variance
    if isinstance(init, str) and init == "fastica":
        return max(0.001, math.sqrt(max(_REFINING_SPREAD_SHARE * smallest_signal, 0.0)))
    paper_rule = 2.5 * math.sqrt(max(float(np.mean(covariance)), 0.0))
    proposal_cap = math.sqrt(max(smallest_signal - noise_variance, 0.0))
    return max(0.001, min(paper_rule, proposal_cap))


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
    V = tau^2 (A^T A)^-1 (spec section 4). The spec's proposal, the
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

    ``cholesky`` and ``narrow_cholesky`` are the lower factors L of V and
    L_W of W: the draws are z = m(y) + L eps and z = R m(y) + L_W eps.
    """

    def __init__(self, mixing, total_variance):
        gram = mixing.T @ mixing
        identity = np.eye(gram.shape[0])
        gram_factor = cho_factor(gram, lower=True)
        self.mixing = mixing
        self.total_variance = total_variance
        self.projector = cho_solve(gram_factor, mixing.T).T
        gram_inverse = cho_solve(gram_factor, identity)
        self.cholesky = cholesky(total_variance * gram_inverse, lower=True)
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
        = ratio_rows[n] @ ratio_draws_t[:, s] + ratio_row_term[n] + ratio_draw_term[s]:
        with |u|^2 the squared standard distance in the draws' own component
        (|eps_s|^2) and |v|^2 = |c_n + G eps_s|^2 that in the other one,
        the ratio is +-(|u|^2 - |v|^2) / 2 plus constants, expanded so that
        a block of rows costs one matrix product.
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
            components.append(
                _Component(
                    bases=bases,
                    factor=factor,
                    draws=draws,
                    offsets_t=np.ascontiguousarray((draws @ factor.T).T, dtype=dtype),
                    ratio_rows=(-sign * shifts).astype(dtype),
                    ratio_draws_t=np.ascontiguousarray(other_t, dtype=dtype),
                    ratio_row_term=(-0.5 * sign * np.einsum("ij,ij->i", shifts, shifts)).astype(
                        dtype
                    ),
                    ratio_draw_term=(
                        0.5 * sign * (own_sq - np.einsum("ij,ij->j", other_t, other_t)) + constant
                    ).astype(dtype),
                )
            )
        return components, share


class _Component(NamedTuple):
    """One component of the mixture proposal, evaluated for a set of rows.

    ``bases`` (N, K), ``factor`` (K, K) and ``draws`` (S_c, K) give the draws
    z = bases[n] + factor @ draws[s]; ``offsets_t`` is (factor @ draws^T) in
    the E-step's dtype, and the ``ratio_*`` terms give the mixture's log
    density ratio at each draw (see ``_Proposal.components``).
    """

    bases: np.ndarray
    factor: np.ndarray
    draws: np.ndarray
    offsets_t: np.ndarray
    ratio_rows: np.ndarray
    ratio_draws_t: np.ndarray
    ratio_row_term: np.ndarray
    ratio_draw_term: np.ndarray


def _log_prior_grid(source, means_t, offsets_t, out, scratch):
    """Write sum_k log p(means[b, k] + offsets[s, k]) into ``out[b, s]``.

    ``means_t`` is (K, B) and ``offsets_t`` is (K, S), both C-contiguous so
    that every source coordinate is one broadcast add over a (B, S) block
    that stays in cache; this (B, S, K) evaluation is the cost of the E-step.
    """
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


def _subtract_log_mixture_weight(out, component, rows, log_share):
    """out -= log(alpha + (1 - alpha) N(z | R m, W) / N(z | m, V)) for a block of draws.

    With u = log((1 - alpha) r / alpha) the log density ratio of
    ``component`` at the draws of ``rows``, the term is
    log(alpha) + softplus(u); softplus by exp and log1p (several times faster
    than np.logaddexp), with u above the float32 exp range taken as
    softplus(u) = u.
    """
    log_ratio = component.ratio_rows[rows] @ component.ratio_draws_t
    log_ratio += component.ratio_row_term[rows, None]
    log_ratio += component.ratio_draw_term
    softplus = np.minimum(log_ratio, _EXP_SAFE)
    np.exp(softplus, out=softplus)
    np.log1p(softplus, out=softplus)
    log_ratio -= _EXP_SAFE
    np.maximum(log_ratio, 0.0, out=log_ratio)
    softplus += log_ratio
    out -= softplus
    out -= log_share
    return out


def _importance_posterior(Y, proposal, eps, source, batch_size, dtype, moments=True):
    """Self-normalised importance sampling of p(z | y) for every row of ``Y``.

    The same standard-normal draws ``eps`` (S, K) serve every row (common
    random numbers), split between the two components of the mixture
    ``proposal``: z_{n,s} = b_n + F eps_s with the component's mean b_n and
    factor F. Weights are prod_k p(z_{n,s,k}) over the mixture-to-
    likelihood-factor density ratio, normalised by log-sum-exp. Rows are
    processed in blocks of ``batch_size`` so that memory is
    O(batch_size * S).

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
    """
    n_rows = Y.shape[0]
    n_draws, n_components = eps.shape
    means = Y @ proposal.projector
    components, wide_share = proposal.components(means, eps, dtype)
    draws_d = [component.draws.astype(dtype) for component in components]
    log_marginal = proposal.log_normaliser(Y, means) - math.log(n_draws)
    if moments:
        row_shares = np.empty((n_rows, len(components)))
        weighted_draws = [np.empty((n_rows, n_components)) for _ in components]
        draw_totals = [np.zeros(len(draws)) for draws in draws_d]
        inverse_ess_total = 0.0
    block = min(batch_size, n_rows)
    # One contiguous (block, S_c) buffer per component keeps the grid's
    # broadcast adds on unit-stride memory.
    buffers = [
        (np.empty((block, len(draws)), dtype=dtype), np.empty((block, len(draws)), dtype=dtype))
        for draws in draws_d
    ]
    for start in range(0, n_rows, block):
        rows = slice(start, min(start + block, n_rows))
        n_block = rows.stop - start
        blocks = []
        for (out, scratch), component in zip(buffers, components):
            log_weights = _log_prior_grid(
                source,
                np.ascontiguousarray(component.bases[rows].T, dtype=dtype),
                component.offsets_t,
                out[:n_block],
                scratch[:n_block],
            )
            if len(components) > 1:
                _subtract_log_mixture_weight(log_weights, component, rows, math.log(wide_share))
            blocks.append(log_weights)
        row_max = np.max([part.max(axis=1) for part in blocks], axis=0)[:, None]
        totals = np.zeros((n_block, 1))
        for log_weights in blocks:
            log_weights -= row_max
            np.exp(log_weights, out=log_weights)
            totals += log_weights.sum(axis=1, keepdims=True)
        log_marginal[rows] += (row_max + np.log(totals))[:, 0]
        if moments:
            squares = np.zeros(n_block)
            block_totals = totals.astype(dtype)
            for index, (weights, draws) in enumerate(zip(blocks, draws_d)):
                weights /= block_totals
                draw_totals[index] += weights.sum(axis=0)
                squares += np.einsum("ij,ij->i", weights, weights)
                row_shares[rows, index] = weights.sum(axis=1)
                weighted_draws[index][rows] = weights @ draws
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


def _draw_sets(n_rows, n_draws, n_components, rng):
    """Contiguous groups of rows, each with its own importance draws, fixed for a fit.

    Draws shared by all rows make the E-step's Monte Carlo error common to
    every row, so it does not average out over the rows; along directions
    that the noise hides the EM map contracts slowly, and its fixed point
    moves by that error divided by one minus the rate. Independent draws
    per group of rows let the error average over the groups.
    """
    n_sets = min(_MAX_DRAW_SETS, max(1, n_rows // _ROWS_PER_DRAW_SET))
    bounds = np.linspace(0, n_rows, n_sets + 1).astype(int)
    return [
        (slice(start, stop), _standard_normal_draws(n_draws, n_components, rng))
        for start, stop in zip(bounds[:-1], bounds[1:])
    ]


def _relative_change(new, old):
    return float(np.linalg.norm(new - old) / np.linalg.norm(old))


def _fit_spread_em(
    Y, mixing, total_variance, draw_sets, source, max_iter, tol, batch_size, verbose
):
    """Iterate the EM map with SQUAREM acceleration until A stops moving.

    With the draws fixed, the EM map F is a deterministic smooth function of
    A, so SQUAREM (Varadhan and Roland, 2008, scheme S3) applies: from
    A0, A1 = F(A0), A2 = F(A1), r = A1 - A0, v = A2 - 2 A1 + A0 and
    alpha = -|r| / |v|, the extrapolation A' = A0 - 2 alpha r + alpha^2 v is
    stabilised by one more EM step and kept only if its fixed-point residual
    |F(A') - A'| is at most that of A1, |A2 - A1|; otherwise the plain step
    A2 is taken. The residual, not the log-likelihood, is the safeguard:
    with finitely many importance draws the EM map is not an exact ascent
    of the estimated log-likelihood, whose value can drift down by 1e-5
    near the fixed point. The step bound grows by 4 each time it is hit,
    as in the SQUAREM defaults.

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
                f"{value:.6f}, relative change of A {_relative_change(new_A, A):.2e}, "
                f"effective sample size {ess:.1f}"
            )
        return new_A

    step_bound = 1.0
    while len(loglike) < max_iter:
        first = em_map(mixing)
        if _relative_change(first, mixing) < tol:
            return first, loglike, effective_sample_size[-1], True
        if len(loglike) + 2 > max_iter:
            mixing = first
            continue
        second = em_map(first)
        r = first - mixing
        v = second - 2.0 * first + mixing
        v_norm = np.linalg.norm(v)
        if v_norm == 0.0:
            mixing = second
            continue
        alpha = max(-np.linalg.norm(r) / v_norm, -step_bound)
        if alpha == -step_bound:
            step_bound *= 4.0
        alpha = min(alpha, -1.0)
        extrapolated = mixing - 2.0 * alpha * r + alpha**2 * v
        try:
            stabilised = em_map(extrapolated)
        except np.linalg.LinAlgError:
            stabilised = None
        if stabilised is not None and np.all(np.isfinite(stabilised)) and (
            alpha == -1.0
            or np.linalg.norm(stabilised - extrapolated) <= np.linalg.norm(second - first)
        ):
            # alpha = -1 extrapolates to A2 itself, so F(A') is a plain EM step.
            mixing = stabilised
        else:
            step_bound = 1.0
            mixing = second
    return mixing, loglike, effective_sample_size[-1], False


def _initial_mixing(init, X_centred, n_components, noise_variance, random_state, tol):
    """Starting mixing matrix (D, K), scaled for unit-variance sources."""
    n_samples, n_features = X_centred.shape
    if not isinstance(init, str):
        mixing = np.asarray(init, dtype=float)
        if mixing.shape != (n_features, n_components):
            raise ValueError(
                f"init as an array must have shape (n_features, n_components) = "
                f"({n_features}, {n_components}); got {mixing.shape}."
            )
        if not np.all(np.isfinite(mixing)):
            raise ValueError("init contains NaN or infinity.")
        return mixing.copy()
    if init == "fastica":
        ica = FastICA(
            n_components=n_components,
            whiten="unit-variance",
            max_iter=1000,
            tol=tol,
            random_state=random_state,
        )
        # A start need not be converged: the EM refines it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ica.fit(X_centred)
        return ica.mixing_
    covariance = X_centred.T @ X_centred / n_samples
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:n_components]
    signal = np.maximum(eigenvalues[order] - noise_variance, 1e-6 * eigenvalues.max())
    if init == "pca":
        return eigenvectors[:, order] * np.sqrt(signal)
    # 'random': a random orientation with the PCA scale, so that the spread
    # proposal is neither degenerate nor far too wide.
    rotation = random_state.standard_normal((n_features, n_components))
    rotation /= np.linalg.norm(rotation, axis=0)
    return rotation * np.sqrt(signal)


class SpreadICA(
    SpreadScoreMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Linear ICA by spread maximum likelihood, for deterministic and noisy mixtures.

    The model is x = A z + mu + e with independent unit-variance non-Gaussian
    sources z (K of them), a mixing matrix A of shape (D, K), D >= K, and
    observation noise e ~ N(0, gamma^2 I); gamma = 0 is deterministic
    (implicit) ICA, for which maximum likelihood and its EM algorithm are
    stuck: the M-step returns its input (paper eq 43-45). SpreadICA instead
    maximises the spread log-likelihood E_{y ~ N(x, sigma^2 I)} log p~(y)
    of the model convolved with Gaussian spread noise, by an EM algorithm
    whose E-step is self-normalised importance sampling from the Gaussian
    factor of the posterior (spec section 4). With ``spread=None`` and
    ``noise_variance > 0`` it is the standard noise-only EM, kept as the
    baseline the paper compares with.

    Parameters
    ----------
    n_components : int, default=None
        Number of sources K; None means K = n_features.
    source : {'laplace', 'logistic'}, default='laplace'
        Density of the sources, both super-Gaussian with unit variance.
    spread : {'gaussian'}, GaussianSpread or None, default='gaussian'
        Spread noise. Only Gaussian spread keeps y | z Gaussian, with
        variance tau^2 = gamma^2 + sigma^2, which the importance sampler
        needs. None is the noise-only baseline (needs ``noise_variance > 0``).
    spread_scale : float or 'auto', default='auto'
        Standard deviation sigma of the spread. 'auto' depends on the start.
        From ``init='fastica'``, a consistent start that EM only refines,
        sigma^2 = 0.02 (lambda_K - gamma^2), with lambda_K the K-th
        eigenvalue of the data covariance: the spread adds at most 2% of
        the weakest source's variance to its posterior, so it costs little
        statistical efficiency. From any other start EM must travel, and
        'auto' is the paper's rule sigma = max(0.001, 2.5 sqrt(mean of the
        entries of A A^T)), the data covariance standing in for A A^T,
        capped so that sigma^2 + 2 gamma^2 <= lambda_K: then the importance
        proposal is nowhere wider than the source prior (see Notes).
        Ignored when ``spread`` is an object (its own scale is used) or None.
    noise_variance : float, default=0.0
        Observation noise variance gamma^2 of the model, kept fixed; 0 is
        deterministic ICA.
    n_spread_samples : int, default=1
        Spread copies S_y of each data point, drawn once per fit.
    n_importance_samples : int, default=1000
        Importance samples S_z per spread copy, drawn once per fit; each
        group of at least 256 rows has its own set (see Notes).
    init : {'fastica', 'pca', 'random'} or array-like of shape \
            (n_features, n_components), default='fastica'
        Starting mixing matrix. 'fastica' is scikit-learn's FastICA with
        unit-variance sources, a consistent start for deterministic ICA;
        'pca' is the principal subspace scaled by the signal variances.
    max_iter : int, default=500
        Maximum number of EM map evaluations (E-steps).
    tol : float, default=1e-4
        Stop when one EM step changes A by less than ``tol`` relative to
        its Frobenius norm.
    batch_size : int, default=256
        Rows per block of the E-step; memory is O(batch_size *
        n_importance_samples).
    random_state : int, RandomState instance or None, default=None
        Seed of the start, of the spread copies and importance draws, and
        of the fixed draws that make ``transform`` and ``score_samples``
        deterministic.
    verbose : int, default=0
        Print one line per EM iteration when positive.

    Attributes
    ----------
    mixing_ : ndarray of shape (n_features, n_components)
        Estimated mixing matrix A (sources of unit variance).
    components_ : ndarray of shape (n_components, n_features)
        Unmixing matrix, the pseudo-inverse of ``mixing_``.
    mean_ : ndarray of shape (n_features,)
        Mean mu of the training data.
    noise_variance_ : float
        Model observation noise gamma^2.
    spread_ : GaussianSpread or None
        The spread used.
    spread_scale_ : float
        Standard deviation sigma of the spread (0.0 without spread).
    n_iter_ : int
        Number of EM map evaluations.
    effective_sample_size_ : float
        Mean effective sample size 1 / sum_s w_s^2 of the importance weights
        in the last E-step (between 1 and ``n_importance_samples``); a
        ``ConvergenceWarning`` is raised when it falls below
        min(10, n_importance_samples / 10).
    loglike_ : list of float
        Mean spread log-likelihood of the training spread copies at each
        EM evaluation (the importance draws are fixed, so these values
        are comparable between iterations).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.FastICA : Fixed-point ICA, used as the start.
    SpreadFactorAnalysis : The Gaussian-source counterpart, in closed form.

    Notes
    -----
    Gaussian spread gives p(y | z) = N(y | A z + mu, tau^2 I), and
    N(y | A z + mu, tau^2 I) = c(y) N(z | m(y), V) with
    m(y) = (A^T A)^-1 A^T (y - mu), V = tau^2 (A^T A)^-1. The E-step is
    self-normalised importance sampling of p(z | y), proportional to
    N(z | m(y), V) prod_k p(z_k); the M-step is
    A <- (sum y E[z|y]^T)(sum E[z z^T|y])^-1. The spread copies and the
    importance draws are fixed for the whole fit (common random numbers),
    which makes the EM map a smooth deterministic function of A and lets
    SQUAREM accelerate it. The cost per iteration is
    O(n_samples * n_spread_samples * n_importance_samples * n_components),
    evaluated in float32 blocks.

    The spec's proposal, N(m(y), V), serves while V is narrow next to the
    unit-variance prior, as in the paper's non-square setting (D = 20,
    K = 10: V is about 0.15 I). Where A has a small singular value and the
    noise is not small (square sign matrices at gamma = 0.5-1), V is up to
    50 times wider than the prior along the weak direction. Half of the
    draws therefore come from the Gaussian-source posterior
    N((I - W) m(y), W), W = (A^T A / tau^2 + I)^-1, and every draw is
    weighted against the two-component mixture (defensive importance
    sampling [3]), which keeps the weights below prod_k p(z_k) / 0.5. And
    each group of at least 256 rows (64 groups at most) has its own draws:
    with one set shared by all rows the Monte Carlo error is the same for
    every row, it does not average out over N, and along a direction the
    noise hides, where the EM map contracts slowly, it moves the fixed
    point; EM started at the true A then drifted away from it while the
    likelihood fell. With both, at D = K = 10, N = 2000, gamma = 1, the
    error is 0.78 of FastICA's (1.02 with the spec's proposal and shared
    draws). From a PCA or random start, 'auto' also caps sigma so that
    tau^2 <= lambda_K(A^T A), which keeps V <= I while EM travels.

    The spread is consistent at any sigma but costs statistical efficiency
    that grows with sigma. From the FastICA start, over the settings of
    benchmarks/results/ica_vs_fastica.md (D = 10 and 20, K = 10, N = 2000
    and 20000, gamma = 0-1), the mean error is 0.46-1.00 times FastICA's
    with the refining spread that 'auto' uses there, 0.46-1.38 times with
    the paper's rule (0.87-1.38 for D = 20). Only from a poor start (PCA,
    random) is the large spread needed, to keep EM moving.
    ``effective_sample_size_`` measures the sampler's health, and a
    ``ConvergenceWarning`` asks for a smaller ``spread_scale`` when it
    collapses.

    ``transform`` returns E[z | x] under the model (noise gamma^2): the
    least-squares sources ``components_ @ (x - mu)`` when gamma = 0, an
    importance-sampling estimate otherwise. ``score_samples`` estimates the
    spread log-likelihood of each row with spread copies and importance
    draws from a seed fixed at fit, shared by all rows, so repeated calls
    agree and each row's value does not depend on the other rows.

    References
    ----------
    .. [1] M. Zhang, P. Hayes, T. Bird, R. Habib and D. Barber, "Spread
       Divergence", ICML 2020, section 4.1.
    .. [2] R. Varadhan and C. Roland, "Simple and globally convergent
       methods for accelerating the convergence of any EM algorithm",
       Scandinavian Journal of Statistics 35, 2008.
    .. [3] T. Hesterberg, "Weighted average importance sampling and
       defensive mixture distributions", Technometrics 37, 1995.

    Examples
    --------
    >>> from skspread import SpreadICA
    >>> from skspread.datasets import make_ica
    >>> from skspread.metrics import mixing_error
    >>> data = make_ica(2000, n_features=4, n_components=2, random_state=0)
    >>> ica = SpreadICA(n_components=2, n_importance_samples=200, random_state=0)
    >>> ica.fit(data.data).mixing_.shape
    (4, 2)
    >>> mixing_error(ica.mixing_, data.mixing) < 0.1
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "source": [StrOptions(set(_ICA_SOURCES))],
        "spread": [StrOptions({"gaussian", "laplace"}), BaseSpread, None],
        "spread_scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "noise_variance": [Interval(Real, 0, None, closed="left")],
        "n_spread_samples": [Interval(Integral, 1, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"fastica", "pca", "random"}), "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        source="laplace",
        spread="gaussian",
        spread_scale="auto",
        noise_variance=0.0,
        n_spread_samples=1,
        n_importance_samples=1000,
        init="fastica",
        max_iter=500,
        tol=1e-4,
        batch_size=256,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.source = source
        self.spread = spread
        self.spread_scale = spread_scale
        self.noise_variance = noise_variance
        self.n_spread_samples = n_spread_samples
        self.n_importance_samples = n_importance_samples
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the mixing matrix by spread-EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : SpreadICA
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n_samples, n_features = X.shape
        n_components = n_features if self.n_components is None else self.n_components
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be <= n_features={n_features}: "
                "SpreadICA needs at least as many observed dimensions as sources."
            )
        if isinstance(self.spread, BaseSpread) or self.spread is None:
            scale = 1.0
        elif self.spread_scale == "auto":
            scale = _auto_spread_scale(X, n_components, self.noise_variance, self.init)
        else:
            scale = self.spread_scale
        spread = resolve_spread(self.spread, scale, self.noise_variance)
        if spread is not None and not isinstance(spread, GaussianSpread):
            raise ValueError(
                f"SpreadICA needs Gaussian spread, got {spread!r}: only Gaussian "
                "spread keeps p(y | z) Gaussian, which its importance sampler "
                "uses as proposal. Use spread='gaussian'."
            )
        spread_variance = 0.0 if spread is None else spread.variance
        total_variance = self.noise_variance + spread_variance

        rng = check_random_state(self.random_state)
        self.mean_ = X.mean(axis=0)
        X_centred = X - self.mean_
        mixing = _initial_mixing(
            self.init, X_centred, n_components, self.noise_variance, rng, self.tol
        )
        if spread is None:
            Y = X_centred
        else:
            Y = np.repeat(X_centred, self.n_spread_samples, axis=0)
            Y += spread.noise(Y.shape, rng)
        draw_sets = _draw_sets(len(Y), self.n_importance_samples, n_components, rng)
        try:
            mixing, loglike, effective_sample_size, converged = _fit_spread_em(
                Y,
                mixing,
                total_variance,
                draw_sets,
                self.source,
                self.max_iter,
                self.tol,
                self.batch_size,
                self.verbose,
            )
        except np.linalg.LinAlgError as error:
            raise ValueError(
                "The mixing matrix became rank deficient during EM: the data may "
                "have fewer than n_components independent directions. Reduce "
                "n_components or use another init."
            ) from error
        if not converged:
            warnings.warn(
                f"SpreadICA did not converge: the last EM step changed the mixing "
                f"matrix by more than tol={self.tol} after max_iter={self.max_iter} "
                "iterations. Increase max_iter or tol; with spread=None and a small "
                "noise_variance, EM is known to stall (use a spread).",
                ConvergenceWarning,
            )
        if effective_sample_size < min(10.0, self.n_importance_samples / 10):
            warnings.warn(
                f"The importance sampler is degenerate: its mean effective sample "
                f"size was {effective_sample_size:.1f} of n_importance_samples="
                f"{self.n_importance_samples}, so the E-step moments, and the mixing "
                "matrix, are biased. The proposal is too wide for the posterior "
                "in too many directions (tau^2 (A^T A)^-1 is not small next to "
                "1): reduce spread_scale or increase n_importance_samples.",
                ConvergenceWarning,
            )
        self.mixing_ = mixing
        self.effective_sample_size_ = effective_sample_size
        self.components_ = np.linalg.pinv(mixing)
        self.noise_variance_ = float(self.noise_variance)
        self.spread_ = spread
        self.spread_scale_ = 0.0 if spread is None else spread.scale
        self.n_iter_ = len(loglike)
        self.loglike_ = loglike
        self._evaluation_seed = int(rng.randint(np.iinfo(np.int32).max))
        return self

    def _evaluation_draws(self):
        """Spread offsets (S_y, D) and importance draws (S_z, K), fixed at fit."""
        rng = np.random.RandomState(self._evaluation_seed)
        n_features, n_components = self.mixing_.shape
        if self.spread_ is None:
            offsets = np.zeros((1, n_features))
        else:
            offsets = self.spread_.noise((self.n_spread_samples, n_features), rng)
        eps = _standard_normal_draws(self.n_importance_samples, n_components, rng)
        return offsets, eps

    def transform(self, X):
        """Posterior mean of the sources, E[z | x], under the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        sources : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        X_centred = X - self.mean_
        if self.noise_variance_ == 0.0:
            return X_centred @ self.components_.T
        _, eps = self._evaluation_draws()
        proposal = _Proposal(self.mixing_, self.noise_variance_)
        _, posterior_mean, _, _ = _importance_posterior(
            X_centred, proposal, eps, self.source, self.batch_size, np.float64
        )
        return posterior_mean

    def inverse_transform(self, X):
        """Map sources back to data space: x = A z + mu.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Sources.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.mixing_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} columns; inverse_transform expects "
                f"n_components={self.mixing_.shape[1]}."
            )
        return X @ self.mixing_.T + self.mean_

    def sample(self, n_samples=1, random_state=None):
        """Draw data from the fitted model x = A z + mu + e.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the sources and noise.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        rng = check_random_state(random_state)
        n_features, n_components = self.mixing_.shape
        X = sample_sources(self.source, (n_samples, n_components), rng) @ self.mixing_.T
        if self.noise_variance_ > 0:
            X += math.sqrt(self.noise_variance_) * rng.standard_normal(X.shape)
        return X + self.mean_

    def score_samples(self, X):
        """Spread log-likelihood of each sample, by importance sampling.

        The mean of log p~(y) over ``n_spread_samples`` spread copies
        y = x + sigma e, each estimated with ``n_importance_samples`` draws;
        the copies and draws come from a seed fixed at fit, so the result
        is deterministic. Without spread it is log p(x) under the noisy
        model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        X_centred = X - self.mean_
        offsets, eps = self._evaluation_draws()
        total_variance = self.noise_variance_ + (
            0.0 if self.spread_ is None else self.spread_.variance
        )
        proposal = _Proposal(self.mixing_, total_variance)
        log_likelihood = np.zeros(X.shape[0])
        for offset in offsets:
            log_marginal, _, _, _ = _importance_posterior(
                X_centred + offset,
                proposal,
                eps,
                self.source,
                self.batch_size,
                np.float64,
                moments=False,
            )
            log_likelihood += log_marginal
        return log_likelihood / len(offsets)


    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
