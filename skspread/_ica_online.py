"""Online EM of SpreadICA.partial_fit: stochastic approximation of the E-step's statistics.

Online EM (Cappe and Moulines, 2009) keeps a running average of the
E-step's sufficient statistics per row, s = (C, S, sum y^2) / N (paper eq
50, 51), with a learned density's histogram of the weighted posterior
draws, and takes the M-step on it: block t, of n_t rows, moves it by the
step rho_t = n_t / (n_1 + ... + n_t) (the schedule rho_t = 1 / t for
blocks of equal size, kappa = 1),
s_t = (1 - rho_t) s_{t-1} + rho_t s(block_t; theta_t), rho_1 = 1, so that
s_t weighs every row seen alike.

The block's statistics are taken at theta_t, the EM fixed point of the
block alone (the fit's SQUAREM-accelerated EM on the block), not at the
running theta. Near the deterministic limit the EM map contracts slowly
(paper eq 43-45): statistics taken at a theta mostly restate that theta,
so plain online EM, one E-step per block at the running theta, kept the
start's error. To first order in the blocks' spread around the
full-data fixed point, the M-step of the averaged fixed-point statistics
is the average of the blocks' fixed points, which is that point. The
block's EM starts from the running theta or from a fit's start on the
block (its sources matched to the running ones), whichever has the
higher spread log-likelihood on the block: a warm start alone barely
moves, and a block's own start can fail (FastICA on one block).

A later block of fewer than ``_LEAST_BLOCK_ROWS`` rows per source has no
fixed point of its own worth averaging: EM on 10 rows of a 4 x 2 mixture
took entries of A from 1.1 to 14, and at a step of 1% that block raised
the model's mixing error from 0.065 to 0.44. Its statistics are taken at
the running theta instead (one plain online EM step, which moves the
model by about the step), with a warning.
"""

import warnings
from numbers import Number
from typing import NamedTuple

import numpy as np

from ._ica_em import _e_step, _EMResult, _fit_spread_em, _learned_total_variance, _m_step
from ._ica_start import _FitStart, _initial_parameters, _is_identifiable
from ._source_density import start_density, update_density
from .metrics import match_components


class _OnlineState(NamedTuple):
    """What partial_fit keeps between blocks: the start, the mean, the statistics, theta.

    ``start`` is the first block's ``_FitStart`` without its data and
    generator (the spread, the kind of noise and its floor stay fixed);
    ``statistics`` are the running per-row statistics (None before the
    first block's update); ``rng_state`` continues the stream of spread
    copies and importance draws, so that a pickled state resumes it.
    """

    start: _FitStart
    mean: np.ndarray
    n_samples_seen: int
    n_blocks: int
    statistics: object
    mixing: np.ndarray
    total_variance: object
    prior: object
    rng_state: tuple
    # The estimator's parameters that the first block fixed (STREAM_PARAMETERS).
    parameters: dict

    @classmethod
    def first(cls, start, n_samples, estimator):
        """The state before the first block's update, from the fit's start on it."""
        return cls(
            start._replace(X_centred=None, rng=None),
            start.mean,
            n_samples,
            0,
            None,
            start.mixing,
            start.total_variance,
            estimator.source,
            start.rng.get_state(),
            _stream_parameters(estimator),
        )

    def with_mean_of(self, X, estimator):
        """The state with the block X counted in the running mean (a new state).

        ``estimator`` must still have the parameters of the first block
        (``STREAM_PARAMETERS``): a ValueError says which changed, as
        IncrementalPCA's does for n_components.
        """
        changed = [
            name
            for name, value in _stream_parameters(estimator).items()
            if not _same(value, self.parameters[name])
        ]
        if changed:
            was = ", ".join(repr(self.parameters[name]) for name in changed)
            raise ValueError(
                f"SpreadICA.partial_fit: {', '.join(changed)} changed since the first "
                f"block of this stream (was {was}); the stream keeps them. Call fit, "
                "or start a new stream on a fresh estimator (clone), to use the new "
                "values."
            )
        n_seen = self.n_samples_seen + len(X)
        mean = self.mean + (X.mean(axis=0) - self.mean) * (len(X) / n_seen)
        return self._replace(mean=mean, n_samples_seen=n_seen)

    def random_state(self):
        """A generator that continues the stream where the last block left it."""
        rng = np.random.RandomState()
        rng.set_state(self.rng_state)
        return rng


# The parameters a stream keeps from its first block (the others apply per block).
STREAM_PARAMETERS = ("n_components", "source", "noise_variance", "spread", "spread_scale")


def _stream_parameters(estimator):
    return {name: getattr(estimator, name) for name in STREAM_PARAMETERS}


def _same(value, kept):
    """Whether a parameter's value is the one the stream kept.

    Numbers and names compare by value (np.float64(0.09) is 0.09), objects
    (a spread) by identity or repr.
    """
    plain = (Number, str, type(None))
    if isinstance(value, plain) and isinstance(kept, plain):
        return isinstance(value, str) == isinstance(kept, str) and bool(value == kept)
    return value is kept or repr(value) == repr(kept)


# Rows per source below which a later block is not fitted alone (see module).
_LEAST_BLOCK_ROWS = 20


def _fitted_alone(n_rows, n_components):
    """Whether a later block of ``n_rows`` rows gets its own EM fixed point (see module)."""
    return n_rows >= _LEAST_BLOCK_ROWS * n_components


def step_size(n_rows, n_samples_seen):
    """rho_t = n_t / (n_1 + ... + n_t): a block of ``n_rows`` rows, ``n_samples_seen`` with it."""
    return n_rows / n_samples_seen


def _block_starts(state, first_block, X_centred, init, noise_variance, rng):
    """The (mixing, total variance, prior) triples a block's EM may start from.

    The first block starts as fit does (``state`` holds that start, and the
    prior 'adaptive' has the EM fit the densities to the start's sources); a
    later one from the model so far and, when the block is identifiable and
    large enough to be fitted alone, from a fit's start on it, its sources
    matched in order and sign to the model's (and a learned density fitted
    to those sources).
    """
    starts = [(state.mixing, state.total_variance, state.prior)]
    n_components = state.start.n_components
    own_start = not first_block and _fitted_alone(len(X_centred), n_components)
    if own_start and _is_identifiable(X_centred, n_components):
        mixing, total_variance, _ = _initial_parameters(
            init, noise_variance, X_centred, n_components, state.start.spread_variance, rng
        )
        source = "adaptive" if not isinstance(state.prior, str) else state.prior
        prior, mixing = start_density(
            source, X_centred, match_components(mixing, state.mixing)
        )
        starts.append((mixing, total_variance, prior))
    return starts


def _online_update(state, Y, n_rows, block_starts, draw_sets, settings, rng):
    """The state after a block of ``n_rows`` rows, and the block's EM run.

    ``Y`` are the spread copies of the block's rows, centred by the running
    mean; ``block_starts`` are the (mixing, total variance, prior) triples
    its EM may start from: the one with the highest spread log-likelihood on
    the block;
    ``draw_sets`` are the block's importance draws and ``rng`` the generator
    that drew them and Y's spread (its state is kept for the next block);
    ``settings`` are the estimator's (max_iter, tol, batch_size, verbose).
    """
    start = state.start
    max_iter, tol, batch_size, verbose = settings
    if state.statistics is not None and not _fitted_alone(n_rows, start.n_components):
        least_rows = _LEAST_BLOCK_ROWS * start.n_components
        warnings.warn(
            f"SpreadICA.partial_fit: a block of {n_rows} rows is too small to be fitted "
            f"alone (fewer than {_LEAST_BLOCK_ROWS} per source, {least_rows}); its "
            "statistics are taken at the current model, one online EM step, which "
            "moves the model little. Pass blocks of at least that many rows (join "
            "short ones) for the full update.",
            UserWarning,
            # _online_update, partial_fit, _fit_context, atomic_fit: the caller's line.
            stacklevel=5,
        )
        block = _e_step(Y, state.mixing, state.total_variance, draw_sets, state.prior, batch_size)
        result = _EMResult(
            state.mixing,
            state.total_variance,
            state.prior,
            [block.log_likelihood / block.n_rows],
            block.effective_sample_size / block.n_rows,
            converged=True,
            stalled=False,
            rate=0.0,
        )
        return _averaged(state, block, n_rows, result, rng), result
    if len(block_starts) > 1:
        block_starts = [
            max(
                block_starts,
                key=lambda start: _e_step(
                    Y, start[0], start[1], draw_sets, start[2], batch_size
                ).log_likelihood,
            )
        ]
    mixing, total_variance, prior = block_starts[0]
    result = _fit_spread_em(
        Y,
        mixing,
        total_variance,
        draw_sets,
        prior,
        max_iter,
        tol,
        batch_size,
        verbose,
        noise=start.noise,
        least_variance=start.least_variance,
    )
    block = _e_step(
        Y, result.mixing, result.total_variance, draw_sets, result.prior, batch_size
    )
    return _averaged(state, block, n_rows, result, rng), result


def _averaged(state, block, n_rows, result, rng):
    """The state with a block's E-step statistics ``block`` averaged in, and the M-step on them.

    ``result`` is the block's EM run (its density is where the densities'
    M-step starts); ``rng`` the generator whose state the next block continues.
    """
    start = state.start
    per_row = block.scaled(1.0 / block.n_rows)
    rho = step_size(n_rows, state.n_samples_seen)
    if state.statistics is not None:
        per_row = state.statistics.scaled(1.0 - rho) + per_row.scaled(rho)
    mixing, feature_variance = _m_step(per_row)
    # A learned density's M-step on the averaged histogram, from the block's
    # density; each block's sources have unit variance, so the scales it
    # returns are near 1 and the averaged C and S keep their units.
    mixing, prior = update_density(result.prior, per_row.histogram, mixing)
    total_variance = state.total_variance
    if start.noise != "fixed":
        total_variance = _learned_total_variance(
            feature_variance, start.noise, start.least_variance
        )
    return state._replace(
        n_blocks=state.n_blocks + 1,
        statistics=per_row,
        mixing=mixing,
        total_variance=total_variance,
        prior=prior,
        rng_state=rng.get_state(),
    )
