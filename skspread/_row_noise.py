"""Per-row common random numbers: noise that is a function of a row's values and a seed.

``score_samples`` estimates each row's spread log-likelihood with random
spread copies. Two properties are wanted of that noise: a row's score
depends on that row alone (``score_samples(X[mask]) == score_samples(X)[mask]``)
and on nothing drawn after fit (repeated calls agree). One set of copies
shared by all rows has both, but then every row carries the same draw's
error, which does not average out in the mean score over rows: the score
of a fitted model moves with its seed by the size of one row's error.

Here each row gets its own draws, derived from its values and the seed
fixed at fit by a counter-based hash: draw c of row i is
``mix(key_i + (c + 1) * G)``, with ``key_i`` a hash of the row's values on
a grid in units of the spread (so that data in other units get the same
draws) and of the seed. Rows with different values get (practically)
independent draws, so the error of the mean score shrinks like
1 / sqrt(n_samples); equal rows get equal draws, so a row's score is still
a function of the row. The mixing function is the finaliser of the
SplitMix64 generator (Steele, Lea and Flood, 2014), whose outputs for
consecutive counters pass the standard statistical test batteries; it is
written here with NumPy's wrapping uint64 arithmetic, vectorised over rows.
SpreadICA turns the draws into Gaussian spread copies; DeltaVAE, whose
kernel (any kernel, or a learned spread) draws its own noise, seeds one
torch generator per row with the row's key instead.
"""

import numpy as np
from scipy.special import ndtri

__all__ = ["row_keys", "row_standard_normals"]

# The 64-bit golden-ratio increment of SplitMix64 and its finaliser's constants.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MULTIPLIER_1 = np.uint64(0xBF58476D1CE4E5B9)
_MULTIPLIER_2 = np.uint64(0x94D049BB133111EB)


def _mix(words):
    """SplitMix64's finaliser, elementwise on a uint64 array (a bijection of 64-bit words)."""
    words = (words ^ (words >> np.uint64(30))) * _MULTIPLIER_1
    words = (words ^ (words >> np.uint64(27))) * _MULTIPLIER_2
    return words ^ (words >> np.uint64(31))


def row_keys(X, unit, seed):
    """One 64-bit key per row: a hash of the row, in units of ``unit``, and ``seed``.

    The row is rounded to a grid of ``unit * 2**-20`` before it is hashed,
    so that the same data in other units (``c * X`` with ``c * unit``) get
    the same keys: rounding errors of the conversion, about 1e-16 of the
    values, change a key only for a value within that distance of a grid
    point's edge. Rows closer than the grid get the same key.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows (centred: the grid is about 0).
    unit : float
        Positive scale of the rows that moves with their units (the
        spread's scale).
    seed : int
        Non-negative seed, fixed at fit.

    Returns
    -------
    keys : ndarray of shape (n_samples,), dtype uint64
    """
    # + 0.0 turns the -0.0 of np.round into 0.0, so that equal values have equal bytes.
    grid = np.round(np.asarray(X, dtype=np.float64) * (2.0**20 / unit)) + 0.0
    words = np.ascontiguousarray(grid).view(np.uint64)
    keys = np.full(len(words), _mix(np.array([seed], dtype=np.uint64) + _GOLDEN)[0])
    with np.errstate(over="ignore"):
        # Each word is folded in after the key is mixed, so that the order of
        # the values matters (a row and its permutation get different keys).
        for column in words.T:
            keys = _mix((keys + _GOLDEN) ^ column)
    return keys


def row_standard_normals(keys, shape):
    """Standard normal draws of shape (n_samples, *shape), row i's a function of ``keys[i]``.

    Parameters
    ----------
    keys : ndarray of shape (n_samples,), dtype uint64
        Row keys from :func:`row_keys`.
    shape : tuple of int
        Shape of each row's draws.

    Returns
    -------
    draws : ndarray of shape (n_samples, *shape)
        ``ndtri(u)`` of uniforms u in (0, 1): the top 53 bits of each hashed
        counter, plus half a unit, over 2^53 (never 0 or 1, so never infinite).
    """
    counters = np.arange(1, int(np.prod(shape, dtype=np.int64)) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix(keys[:, None] + counters[None, :] * _GOLDEN)
    uniforms = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return ndtri(uniforms).reshape(len(keys), *shape)
