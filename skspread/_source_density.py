"""Learned source densities for SpreadICA: a mixture of Gaussians per source.

Independent factor analysis (Attias, 1999) models each source by a small
mixture of Gaussians, p_k(z) = sum_j pi_kj N(z; m_kj, v_kj), learned by EM
together with the mixing matrix. SpreadICA's E-step is importance sampling:
every draw z_{n,s} of the posterior of row n carries a normalised weight
w_{n,s}, and the weighted draws of source k are a sample of its posterior
marginal. The density's M-step is then the weighted EM update of a
one-dimensional mixture on those draws, followed by rescaling to unit
variance (the mixing matrix absorbs the scale).

The E-step evaluates log p_k on a (rows, draws) grid for every source, the
hot loop of the fit. A mixture's log-density costs a log-sum-exp over its
components there; instead it is tabulated once per EM step on a fine
uniform grid of source values and interpolated linearly (two gathers per
value, whatever the number of mixture components). The same grid cells
turn the weighted draws into a weighted histogram of each source on the
grid (linear binning), on which the mixture's EM update runs at a cost
independent of the data size. Where the E-step is exact (``_ica_exact``) it
gives each component's posterior moments instead, and the update is one EM
step of the mixtures on them.
"""

import math

import numpy as np

from ._ica_sampling import _one_blas_thread
from ._sources import sample_sources

# The table covers [-_HALF_WIDTH, _HALF_WIDTH] in units of the sources'
# (unit) standard deviation; a draw beyond it takes the edge's density,
# which is below exp(-40) of the centre's for any mixture the update keeps.
_HALF_WIDTH = 20.0
_GRID_SIZE = 32769
_GRID = np.linspace(-_HALF_WIDTH, _HALF_WIDTH, _GRID_SIZE)
_GRID_STEP = _GRID[1] - _GRID[0]

# The log-density table is computed in chunks of this many grid points, as
# the E-step reaches them.
_TABLE_CHUNK = 1024

# Mixture components per source: two model sub-Gaussian (two bumps),
# super-Gaussian (a narrow and a wide bump) and skewed sources; the third
# lets a bimodal or flat source keep mass between its modes.
N_MIXTURE = 3
# Bounds that keep every component alive and the table's lookup accurate:
# variances of at least 1e-2 of the source's (a standard deviation of 80
# grid steps), weights of at least 1e-3.
_MIN_VARIANCE = 1e-2
_MIN_WEIGHT = 1e-3
# Mixture EM iterations on the posterior histogram per spread-EM step. A
# mixture's EM is slow where its components overlap (a scale mixture's trade
# mass), and spread-EM inherits what the density's M-step leaves undone:
# with 10, one fit of the realistic benchmark's noisy paper row took 26
# evaluations, with 100, 6 (0.1 ms a step for 10 sources, against 0.3 s an
# E-step).
_INNER_ITERATIONS = 100
# Grid points per bin of the histogram the mixture's EM runs on.
_COARSE_BIN = 16
# Mixture EM iterations on the start's histogram of the initial source estimates.
_START_ITERATIONS = 50
# The start of a heavy-tailed source's mixture: its quantile means shrunk by
# this factor, and these variances (a narrow centre, wide sides).
_HEAVY_START_SHRINK = 0.2
_HEAVY_START_VARIANCES = (1.6, 0.3, 1.6)


class MixtureSourceDensity:
    """Independent unit-variance sources, each a mixture of Gaussians.

    Parameters
    ----------
    weights, means, variances : ndarray of shape (n_components, n_mixture)
        Mixture weights pi_kj (rows sum to one), means m_kj and variances
        v_kj of each source; each source has mean 0 and variance 1.
    """

    def __init__(self, weights, means, variances):
        self.weights = np.asarray(weights, dtype=float)
        self.means = np.asarray(means, dtype=float)
        self.variances = np.asarray(variances, dtype=float)
        self._tables = {}

    @property
    def n_components(self):
        return self.weights.shape[0]

    def __repr__(self):
        return (
            f"MixtureSourceDensity(n_components={self.n_components}, "
            f"n_mixture={self.weights.shape[1]})"
        )

    def log_density(self, Z):
        """log p_k(Z[:, k]) for every row and source, shape (n, n_components)."""
        Z = np.asarray(Z, dtype=float)
        return _log_sum_exp_of_gaussians(Z.T, self.weights, self.means, self.variances).T

    def log_density_and_scores(self, Z):
        """log p_k(Z[:, k]) and its first and second derivatives in z, three (n, K) arrays.

        With responsibilities r_j and component slopes s_j = (m_j - z) / v_j:
        (log p)' = sum_j r_j s_j and (log p)'' = sum_j r_j (s_j^2 - 1 / v_j)
        - ((log p)')^2.
        """
        Z_t = np.asarray(Z, dtype=float).T
        total, parts = _log_sum_exp_of_gaussians(
            Z_t, self.weights, self.means, self.variances, responsibilities=True
        )
        first, second = np.zeros_like(Z_t), np.zeros_like(Z_t)
        for share, mean, variance in zip(parts, self.means.T, self.variances.T):
            slope = (mean[:, None] - Z_t) / variance[:, None]
            first += share * slope
            slope **= 2
            slope -= 1.0 / variance[:, None]
            second += share * slope
        second -= first**2
        return total.T, first.T, second.T

    def sample(self, n_samples, rng):
        """Draw ``n_samples`` independent source vectors, shape (n_samples, n_components)."""
        n_components, n_mixture = self.weights.shape
        uniforms = rng.uniform(size=(n_samples, n_components, 1))
        chosen = np.sum(uniforms > np.cumsum(self.weights, axis=1)[None, :, :-1], axis=2)
        columns = np.arange(n_components)
        means = self.means[columns, chosen]
        stds = np.sqrt(self.variances[columns, chosen])
        return means + stds * rng.standard_normal((n_samples, n_components))

    # -- a flat parameter vector, for SQUAREM's extrapolation ----------------

    def to_vector(self):
        """log-weights, means and log-variances, flattened: unconstrained coordinates."""
        return np.concatenate(
            [np.log(self.weights).ravel(), self.means.ravel(), np.log(self.variances).ravel()]
        )

    @classmethod
    def from_vector(cls, vector, n_components):
        """The density of a vector from :meth:`to_vector` (weights renormalised)."""
        log_weights, means, log_variances = np.asarray(vector).reshape(3, n_components, -1)
        weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return cls(weights, means, np.exp(log_variances))

    # -- the E-step's grid -------------------------------------------------

    def _table(self, dtype, first=0, last=_GRID_SIZE - 1):
        """log p_k on the grid and its forward differences, in ``dtype``.

        Both are (n_components, grid size), index i holding grid point i;
        the last difference is 0. Only the chunks of ``_TABLE_CHUNK`` points
        that grid points ``first`` to ``last`` reach are computed, each once
        per density (a density lives for one EM step, and the E-step's values
        span a few of the grid's 40 source standard deviations); the values
        are those of the whole grid's computation, bit for bit.
        """
        dtype = np.dtype(dtype)
        if dtype not in self._tables:
            shape = (self.n_components, _GRID_SIZE)
            ready = np.zeros(-(-_GRID_SIZE // _TABLE_CHUNK), dtype=bool)
            self._tables[dtype] = (np.empty(shape, dtype), np.empty(shape, dtype), ready)
        table, slope, ready = self._tables[dtype]
        chunks = np.arange(first // _TABLE_CHUNK, last // _TABLE_CHUNK + 1)
        missing = chunks[~ready[chunks]]
        if len(missing):
            start = missing[0] * _TABLE_CHUNK
            stop = min((missing[-1] + 1) * _TABLE_CHUNK, _GRID_SIZE)
            # One point more for the last difference (none after the grid's end).
            values = _log_sum_exp_of_gaussians(
                _GRID[start : stop + 1], self.weights, self.means, self.variances
            )
            table[:, start:stop] = values[:, : stop - start]
            differences = np.diff(values, axis=1)
            if stop == _GRID_SIZE:
                differences = np.column_stack([differences, np.zeros(len(values))])
            slope[:, start:stop] = differences
            ready[missing[0] : missing[-1] + 1] = True
        return table, slope

    def __getstate__(self):
        # The tables are a cache: a pickled density leaves them out.
        return {key: value for key, value in self.__dict__.items() if key != "_tables"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._tables = {}

    @staticmethod
    def grid_origins(means, offsets_t):
        """Each source's lowest grid cell over rows ``means`` (N, K) and draws ``offsets_t`` (K, S).

        :meth:`log_prior_grid` counts cells from these (table indices), so
        that they are never negative: the gathers then need no bounds check
        (``mode='wrap'`` never wraps, and costs half of the default's) and
        the histogram's counts no shift. Taken over all the rows of a set of
        draws, not over a block, so that each value's rounding, and the fit,
        do not depend on ``batch_size``.
        """
        centre = _GRID_SIZE // 2
        low = (means.min(axis=0) + offsets_t.min(axis=1)) / _GRID_STEP
        # One cell of margin: the grid's float32 sums round as they like.
        # Clipped before the conversion: a float beyond intp's range (a row
        # 1e50 times the data's scale) wraps around when converted.
        return np.clip(np.floor(low) - 1, 1 - centre, centre - 2).astype(np.intp) + centre

    def log_prior_grid(self, means_t, offsets_t, out, scratch, origins, positions=None):
        """Write sum_k log p_k(means[b, k] + offsets[s, k]) into ``out[b, s]``.

        ``means_t`` (K, B) and ``offsets_t`` (K, S) as in the fixed priors'
        grid, ``origins`` (K,) from :meth:`grid_origins` for all the rows
        the block belongs to. Each log p_k is interpolated linearly between
        grid points, so the E-step stays a continuous function of A (and
        equivariant to the data's units up to rounding). When ``positions``,
        a pair of a (K, B, S) intp array and a (K, B, S) array of ``out``'s
        dtype, is given, each value's grid cell (counted from its origin) and
        fraction are kept there for :meth:`accumulate`.
        """
        centre = _GRID_SIZE // 2
        # Positions in grid steps from the origin, kept within the table.
        rows_t = means_t * (1.0 / _GRID_STEP)
        draws_t = offsets_t * (1.0 / _GRID_STEP)
        highest = rows_t.max(axis=1) + draws_t.max(axis=1) - (origins - centre)
        # Values all below the grid leave highest far below the origin.
        last = np.clip(origins + np.ceil(highest) + 1, origins, _GRID_SIZE - 1)
        table, slope = self._table(out.dtype, int(origins.min()), int(last.max()))
        if positions is None:
            cell, fraction = np.empty(out.shape, dtype=np.intp), np.empty_like(out)
        for k, origin in enumerate(origins):
            if positions is not None:
                cell, fraction = positions[0][k], positions[1][k]
            shift = origin - centre
            np.add(rows_t[k][:, None] - shift, draws_t[k], out=fraction)
            low = float(rows_t[k].min()) + float(draws_t[k].min()) - shift
            outside = None
            if low < 0 or highest[k] > _GRID_SIZE - 2 - origin:
                outside = np.nonzero((fraction < 0) | (fraction > _GRID_SIZE - 2 - origin))
                np.clip(fraction, 0, _GRID_SIZE - 2 - origin, out=fraction)
            np.floor(fraction, out=scratch)
            cell[...] = scratch
            fraction -= scratch
            np.take(slope[k, origin:], cell, out=scratch, mode="wrap")
            scratch *= fraction
            if k == 0:
                np.take(table[k, origin:], cell, out=out, mode="wrap")
                out += scratch
            else:
                out += scratch
                np.take(table[k, origin:], cell, out=scratch, mode="wrap")
                out += scratch
            if outside is not None and len(outside[0]):
                grid = (table[k, origin:], slope[k, origin:], cell, fraction)
                self._add_tails(out, k, outside, means_t, offsets_t, grid)
        return out

    def _add_tails(self, out, k, outside, means_t, offsets_t, grid):
        """Replace source k's grid value by its exact log-density where the values leave the grid.

        The grid's ends would hold log p_k constant beyond +-20 standard
        deviations, and an outlier's likelihood with it (score_samples
        levelled off near -400 for rows a million times farther out); such
        values are rare, so the exact mixture costs nothing in a fit.
        """
        table, slope, cell, fraction = grid  # source k's, from its origin
        rows, draws = outside
        cells = cell[rows, draws]
        on_grid = table[cells] + slope[cells] * fraction[rows, draws]
        values = means_t[k][rows].astype(np.float64) + offsets_t[k][draws]
        exact = _log_sum_exp_of_gaussians(
            values, self.weights[k : k + 1], self.means[k : k + 1], self.variances[k : k + 1]
        )[0]
        out[rows, draws] += (exact - on_grid).astype(out.dtype)

    def empty_histogram(self):
        """Zeroed statistics for :meth:`accumulate`, (n_components, grid size)."""
        return np.zeros((self.n_components, _GRID_SIZE))

    @staticmethod
    def accumulate(histogram, cells, fractions, origins, weights):
        """Add the normalised weights of a block's draws to each source's histogram.

        ``cells`` and ``fractions`` (K, ...) are the draws' grid cells,
        counted from ``origins`` (K,), and their positions within them (see
        :meth:`log_prior_grid`); ``weights`` (float64) has the shape of
        ``cells[k]``. Each draw's weight is shared between the two grid
        points around it in proportion to its nearness (linear binning),
        which keeps the density's M-step a continuous function of the draws.
        """
        flat_weights = weights.ravel()
        for k in range(len(cells)):
            index = cells[k].ravel()
            total = np.bincount(index, weights=flat_weights)
            moved = np.bincount(index, weights=flat_weights * fractions[k].ravel())
            origin = origins[k]
            histogram[k, origin : origin + len(total)] += total - moved
            histogram[k, origin + 1 : origin + 1 + len(moved)] += moved

    # -- the M-step ----------------------------------------------------------

    def update(self, histogram, n_iterations=_INNER_ITERATIONS):
        """The density's M-step from the posterior histograms, and the sources' scales.

        Runs ``n_iterations`` weighted mixture EM steps on each source's
        histogram over the grid, then standardises each source: with mean
        mu_k and standard deviation s_k of the updated mixture, the new
        density is that of (z - mu_k) / s_k, and the mixing matrix's column
        k is to be multiplied by s_k (returned). A (3, K, J) ``histogram``
        is the exact E-step's moments of the components instead (see
        ``_ica_exact``): one EM step of the mixtures, then the same
        standardisation.
        """
        weights, means, variances = self.weights, self.means, self.variances
        if histogram.ndim == 3:
            moments = histogram / histogram[0].sum(axis=1)[:, None]
            return _standardised(*_mixture_from_moments(moments, means, variances))
        points, mass = _compact(histogram)
        for _ in range(n_iterations):
            weights, means, variances = _mixture_em_step(points, mass, weights, means, variances)
        return _standardised(weights, means, variances)

    @classmethod
    def histogram_of(cls, sources):
        """Each source's histogram on the grid, from values (n, K) in its units (linear binning)."""
        n_components = sources.shape[1]
        # Positions in grid steps from the grid's first point, within the table.
        centre = _GRID_SIZE // 2
        positions = np.clip(sources.T / _GRID_STEP, 1 - centre, centre - 1) + centre
        cells = np.floor(positions)
        histogram = np.zeros((n_components, _GRID_SIZE))
        origins = np.zeros(n_components, dtype=np.intp)
        cls.accumulate(
            histogram, cells.astype(np.intp), positions - cells, origins, np.ones(len(sources))
        )
        return histogram

    @classmethod
    def fit_sources(
        cls, sources, n_mixture=N_MIXTURE, n_iterations=_START_ITERATIONS, heavy_tailed_start=False
    ):
        """A start: the mixture fitted to source estimates (n, K), each standardised.

        Returns the density and the estimates' standard deviations, by which
        the mixing matrix's columns are to be multiplied.
        """
        sources = np.asarray(sources, dtype=float)
        centred = sources - sources.mean(axis=0)
        stds = centred.std(axis=0)
        stds = np.where(stds > 0, stds, 1.0)
        standard = centred / stds
        n_components = sources.shape[1]
        points, mass = _compact(cls.histogram_of(standard))
        # Components start at the quantiles of each source, a third of its
        # variance each: asymmetric and multimodal shapes are then reached
        # without waiting for a symmetric start to break.
        levels = (np.arange(n_mixture) + 0.5) / n_mixture
        cumulative = np.cumsum(mass, axis=1)
        means = np.stack([np.interp(levels, cumulative[k], points) for k in range(n_components)])
        variances = np.full((n_components, n_mixture), 1.0 / n_mixture)
        weights = np.full((n_components, n_mixture), 1.0 / n_mixture)
        # With ``heavy_tailed_start``, heavy-tailed sources (positive excess
        # kurtosis) start instead near a scale mixture, a narrow centre
        # between wide components: from the quantiles, EM takes hundreds of
        # slow steps to pull the components together (a scale mixture's
        # components barely differ in EM's view). The noise-free path fits
        # its densities to convergence and takes it; spread-EM's densities
        # move with A's steps, and on the realistic benchmark's noisy paper
        # row it left the fits slightly less accurate (Amari 0.0515, not 0.0502).
        heavy = np.mean(standard**4, axis=0) > 3.0
        if heavy_tailed_start and n_mixture == 3:
            means[heavy] *= _HEAVY_START_SHRINK
            variances[heavy] = _HEAVY_START_VARIANCES
        for _ in range(n_iterations):
            weights, means, variances = _mixture_em_step(points, mass, weights, means, variances)
        density, scales = _standardised(weights, means, variances)
        return density, stds * scales


# A learned density's coordinates enter SQUAREM's iterated vector scaled by
# this weight, so that its norms, and the stopping rule ``tol``, are those
# of A's change.
STATE_WEIGHT = 1e-2


def start_density(source, X_centred, mixing):
    """The prior a fit starts from, and the start's mixing matrix rescaled to it.

    'adaptive' starts from the mixture fitted to the start's source
    estimates (A's columns absorb their scales); a fixed prior is its name.
    """
    if source != "adaptive":
        return source, mixing
    density, scales = MixtureSourceDensity.fit_sources(X_centred @ np.linalg.pinv(mixing).T)
    return density, mixing * scales


def sample_prior(prior, n_samples, n_components, rng):
    """Sources drawn from a fixed prior (its name) or a learned density, (n_samples, K)."""
    if isinstance(prior, str):
        return sample_sources(prior, (n_samples, n_components), rng)
    return prior.sample(n_samples, rng)


@_one_blas_thread
def update_density(prior, histogram, mixing):
    """The density's M-step after A's: the new prior, and A's columns times the sources' scales."""
    if isinstance(prior, str):
        return mixing, prior
    density, scales = prior.update(histogram)
    return mixing * scales, density


def _log_sum_exp_of_gaussians(points, weights, means, variances, responsibilities=False):
    """log sum_j pi_kj N(x; m_kj, v_kj) at ``points`` x for each source k, (K, T).

    ``points`` are (T,), shared by the sources, or (K, T). With
    ``responsibilities``, also the J (K, T) arrays
    pi_kj N(x; m_kj, v_kj) / sum_j pi_kj N(x; m_kj, v_kj). One (K, T) array
    per mixture component, in place: a reduction over the short last axis
    of a (K, T, J) array, or a temporary per operation, costs several times
    more (the density's table is built for every EM step).
    """
    parts = []
    for weight, mean, variance in zip(weights.T, means.T, variances.T):
        part = np.subtract(points, mean[:, None])
        np.square(part, out=part)
        part *= (-0.5 / variance)[:, None]
        part += (np.log(weight) - 0.5 * np.log(2.0 * math.pi * variance))[:, None]
        parts.append(part)
    peak = parts[0].copy()
    for part in parts[1:]:
        np.maximum(peak, part, out=peak)
    total = np.zeros_like(peak)
    for part in parts:
        part -= peak
        np.exp(part, out=part)
        total += part
    if responsibilities:
        for part in parts:
            part /= total
    np.log(total, out=total)
    total += peak
    return (total, parts) if responsibilities else total


def _compact(histogram):
    """Each source's histogram on coarse bins: the bins' mean positions and their mass.

    Bins of ``_COARSE_BIN`` grid points (a width of 0.02 source standard
    deviations, a fifth of the narrowest component's) keep the mass's
    first moment exactly; empty bins are dropped. Rows of the mass sum to one.
    The grid's last point is a bin of its own.
    """
    n_sources = len(histogram)
    n_bins = (_GRID_SIZE - 1) // _COARSE_BIN
    binned = histogram[:, :-1].reshape(n_sources, n_bins, _COARSE_BIN)
    # Sums over a bin's few points as matrix products: a reduction over a
    # short last axis costs several times more.
    ones = np.ones(_COARSE_BIN)
    mass = np.column_stack([binned @ ones, histogram[:, -1]])
    weighted = binned * _GRID[:-1].reshape(n_bins, _COARSE_BIN)
    moment = np.column_stack([weighted @ ones, histogram[:, -1] * _GRID[-1]])
    occupied = np.flatnonzero(mass.sum(axis=0) > 0)
    mass, moment = mass[:, occupied], moment[:, occupied]
    # One position per bin for all sources: the pooled mean position.
    points = moment.sum(axis=0) / mass.sum(axis=0)
    return points, mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-300)


def _mixture_em_step(points, mass, weights, means, variances):
    """One EM step of a 1-D Gaussian mixture per source on weighted points.

    ``points`` (T,) are shared by the sources, ``mass`` (K, T) are their
    weights (rows sum to one); the mixture's parameters are (K, J). The
    (K, J, T) responsibilities are one array: on the coarse bins (T of a few
    hundred) per-operation overhead, not arithmetic, is the cost.
    """
    deviations = points - means[:, :, None]
    log_parts = np.square(deviations, out=deviations)
    log_parts *= (-0.5 / variances)[:, :, None]
    log_parts += (np.log(weights) - 0.5 * np.log(2.0 * math.pi * variances))[:, :, None]
    log_parts -= log_parts.max(axis=1, keepdims=True)
    responsibilities = np.exp(log_parts, out=log_parts)
    responsibilities *= (mass / responsibilities.sum(axis=1))[:, None, :]
    component_moments = (
        responsibilities.sum(axis=2),
        responsibilities @ points,
        responsibilities @ np.square(points),
    )
    return _mixture_from_moments(component_moments, means, variances)


def _mixture_from_moments(component_moments, means, variances):
    """The mixture's M-step from its components' (K, J) mass, first and second moments.

    Each source's masses sum to one. The new parameters are bounded as the
    module's constants say; a component that lost its mass keeps its place
    and shape (``means``, ``variances``).
    """
    totals, first, second = component_moments
    safe = np.maximum(totals, 1e-300)
    new_means = first / safe
    new_variances = second / safe - new_means**2
    new_weights = np.maximum(totals, _MIN_WEIGHT)
    new_weights /= new_weights.sum(axis=1, keepdims=True)
    # A component that lost its mass keeps its place and shape.
    dead = totals < _MIN_WEIGHT
    new_means = np.where(dead, means, new_means)
    new_variances = np.where(dead, variances, new_variances)
    return new_weights, new_means, np.maximum(new_variances, _MIN_VARIANCE)


def _standardised(weights, means, variances):
    """The density of (z - mu_k) / s_k for each source, and the scales s_k."""
    mean = np.sum(weights * means, axis=1, keepdims=True)
    variance = np.sum(weights * (variances + means**2), axis=1, keepdims=True) - mean**2
    scale = np.sqrt(variance)
    density = MixtureSourceDensity(
        weights,
        (means - mean) / scale,
        variances / variance,
    )
    return density, scale[:, 0]
