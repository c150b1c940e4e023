"""Sample moments that add up across blocks of rows (numerically stable).

One implementation of the pairwise update of Chan, Golub and LeVeque (1979),
used by SpreadFactorAnalysis.partial_fit (full scatter matrices) and by
DeltaVAE's streaming standardisation (per-feature scatters).
"""

import numpy as np


def merge_moments(first, second):
    """Moments of the union of two samples from the moments of each.

    Each argument is ``(count, mean, scatter)`` with ``scatter`` the centred
    sum of squares: a matrix sum((x - mean)(x - mean)^T) of shape
    (n_features, n_features), or its diagonal, of shape (n_features,). The
    scatter of the union is the two scatters plus the outer product of the
    difference of the means weighted by n_a n_b / n, so no uncentred sum is
    ever formed (that would lose about log10(mean^2 / variance) digits).

    Parameters
    ----------
    first, second : tuple (int, ndarray, ndarray)

    Returns
    -------
    moments : tuple (int, ndarray, ndarray)
        Count, mean and scatter of the union, the scatter of the arguments'
        shape.
    """
    n_first, mean_first, scatter_first = first
    n_second, mean_second, scatter_second = second
    n_samples = n_first + n_second
    delta = mean_second - mean_first
    mean = mean_first + delta * (n_second / n_samples)
    weight = n_first * n_second / n_samples
    if np.ndim(scatter_first) == 2:
        correction = np.outer(delta, delta * weight)
    else:
        correction = np.square(delta) * weight
    return n_samples, mean, scatter_first + scatter_second + correction
