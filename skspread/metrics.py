"""Quality measures: errors of estimated mixing matrices, invariant to ICA's
ambiguities, and the Frechet distance between two samples."""

import numpy as np
from scipy import linalg
from scipy.optimize import linear_sum_assignment
from sklearn.utils._param_validation import InvalidParameterError

from ._checks import check_finite_result, check_real_array, power_of_two_unit

__all__ = ["amari_distance", "frechet_distance", "match_components", "mixing_error"]


def amari_distance(W, A):
    """Amari distance between an unmixing matrix ``W`` and a mixing matrix ``A``.

    With P = W A (K x K), the distance is ::

        1/(2K) * sum_i (sum_j |P_ij| / max_j |P_ij| - 1)
          + 1/(2K) * sum_j (sum_i |P_ij| / max_i |P_ij| - 1),

    which lies in [0, K - 1] and is zero exactly when P is a scaled
    permutation matrix, that is when ``W`` inverts ``A`` up to the order and
    scale of the sources.

    Parameters
    ----------
    W : array-like of shape (n_components, n_features)
        Estimated unmixing matrix (for example ``components_``).
    A : array-like of shape (n_features, n_components)
        True mixing matrix.

    Returns
    -------
    distance : float

    Raises
    ------
    ValueError
        If ``W`` or ``A`` is empty or not finite, if their shapes do not
        chain into a square ``W @ A``, or if ``W @ A`` has a zero row or
        column.

    References
    ----------
    .. [1] S. Amari, A. Cichocki and H. H. Yang, "A new learning algorithm for
       blind signal separation", NeurIPS 1996.

    Examples
    --------
    >>> import numpy as np
    >>> from skspread.metrics import amari_distance
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> amari_distance(np.linalg.inv(A), A)
    0.0
    """
    W = check_real_array(W, "W", ndim=2)
    A = check_real_array(A, "A", ndim=2)
    if W.shape[1] != A.shape[0]:
        raise ValueError(
            f"W has {W.shape[1]} columns but A has {A.shape[0]} rows: W must be of shape "
            "(n_components, n_features) and A of shape (n_features, n_components)."
        )
    if W.shape[0] != A.shape[1]:
        raise ValueError(
            f"W @ A must be square; got W of shape {W.shape} and A of shape {A.shape}."
        )
    # The distance is invariant to positive scalings of W and of A: bringing
    # their largest entries near 1 (exactly, by powers of two) keeps W @ A in range.
    W = W / power_of_two_unit(np.max(np.abs(W)))
    A = A / power_of_two_unit(np.max(np.abs(A)))
    P = np.abs(W @ A)
    if np.any(P.max(axis=1) == 0) or np.any(P.max(axis=0) == 0):
        raise ValueError(
            "W @ A has a zero row or column: W loses a source, and the Amari "
            "distance (a ratio to the largest entry) is undefined."
        )
    k = P.shape[0]
    rows = np.sum(P / P.max(axis=1, keepdims=True), axis=1) - 1.0
    cols = np.sum(P / P.max(axis=0, keepdims=True), axis=0) - 1.0
    return float((rows.sum() + cols.sum()) / (2.0 * k))


def match_components(A_est, A_true):
    """Permute and flip the columns of ``A_est`` to best match ``A_true``.

    Columns are paired by maximising the total absolute correlation with
    :func:`scipy.optimize.linear_sum_assignment`, then each matched column
    takes the sign that agrees with its partner.

    Parameters
    ----------
    A_est : array-like of shape (n_features, n_components)
        Estimated mixing matrix.
    A_true : array-like of shape (n_features, n_components)
        Reference mixing matrix.

    Returns
    -------
    A_matched : ndarray of shape (n_features, n_components)
        The columns of ``A_est``, reordered and sign-corrected.

    Examples
    --------
    >>> import numpy as np
    >>> from skspread.metrics import match_components
    >>> A = np.array([[1.0, 0.0], [0.5, 2.0]])
    >>> match_components(-A[:, ::-1], A)
    array([[1. , 0. ],
           [0.5, 2. ]])
    """
    A_est = check_real_array(A_est, "A_est", ndim=2)
    A_true = check_real_array(A_true, "A_true", ndim=2)
    if A_est.shape != A_true.shape:
        raise ValueError(
            f"A_est and A_true must have the same shape; got {A_est.shape} and "
            f"{A_true.shape}."
        )
    similarity = _unit_columns(A_true).T @ _unit_columns(A_est)
    rows, cols = linear_sum_assignment(-np.abs(similarity))
    signs = np.sign(similarity[rows, cols])
    signs[signs == 0] = 1.0
    return A_est[:, cols] * signs


def mixing_error(A_est, A_true):
    """Mean relative error of a mixing matrix after matching its columns.

    The columns of ``A_est`` are first matched to those of ``A_true`` by
    permutation and sign (:func:`match_components`); the error is then the
    mean over all entries of ``|A_est_ij - A_true_ij| / |A_true_ij|``, the
    measure of the spread-divergence paper's figure 4.

    Parameters
    ----------
    A_est : array-like of shape (n_features, n_components)
        Estimated mixing matrix.
    A_true : array-like of shape (n_features, n_components)
        True mixing matrix, with no zero entry.

    Returns
    -------
    error : float

    See Also
    --------
    amari_distance : A scale-invariant alternative.

    Examples
    --------
    >>> import numpy as np
    >>> from skspread.metrics import mixing_error
    >>> A = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    >>> mixing_error(-A[:, ::-1], A)
    0.0
    >>> mixing_error(1.1 * A, A)
    0.1...
    """
    A_true = check_real_array(A_true, "A_true", ndim=2)
    if np.any(A_true == 0):
        raise ValueError("A_true has zero entries: the relative error is undefined.")
    A_matched = match_components(A_est, A_true)
    # The relative error is invariant to a common scaling: a unit near the
    # largest entry (a power of two, exact) keeps the differences in range.
    unit = power_of_two_unit(np.max(np.abs(A_matched)), np.max(np.abs(A_true)))
    A_matched, A_true = A_matched / unit, A_true / unit
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        error = np.mean(np.abs(A_matched - A_true) / np.abs(A_true))
    return float(
        check_finite_result(
            error,
            "The mean relative error",
            "an entry of A_true is too small for the error of A_est relative to it.",
        )
    )


def frechet_distance(X, Y, *, features=None):
    """Frechet distance between Gaussians fitted to two samples.

    With m and C the mean and covariance of a sample, the distance is ::

        ||m_X - m_Y||^2 + tr(C_X + C_Y - 2 (C_X^1/2 C_Y C_X^1/2)^1/2),

    the squared 2-Wasserstein distance between N(m_X, C_X) and N(m_Y, C_Y).
    Computed in a feature space (``features``), it is the measure of sample
    quality of generative models: with the pool features of an Inception
    network, the Frechet Inception Distance (FID) of the paper's table 1.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        First sample, for example a generative model's samples. With
        ``features``, any array that the feature map accepts whose first
        axis indexes the samples.
    Y : array-like of shape (n_samples_Y, n_features)
        Second sample, for example held-out data.
    features : transformer, callable or None, default=None
        Feature map applied to both samples before the Gaussians are fitted:
        a fitted transformer (its ``transform`` is used, as for a
        :class:`~sklearn.pipeline.Pipeline` or
        :class:`~sklearn.decomposition.PCA`) or a callable that maps an
        array of ``n`` samples to an array of shape (n, n_features_out).
        None compares the samples themselves.

    Returns
    -------
    distance : float
        The distance, >= 0, in squared units of the data (or features).

    Raises
    ------
    ValueError
        If a sample (or its features) is not 2-D, has fewer than two rows,
        is not finite, or if the two disagree in their number of features.
    TypeError
        If a sample does not hold real numbers or ``features`` is neither a
        transformer nor a callable.

    See Also
    --------
    skspread.divergence.gaussian_kl : Another divergence of two Gaussians.

    Notes
    -----
    tr (C_X C_Y)^1/2 is the sum of the square roots of the eigenvalues of
    the symmetric positive semi-definite C_X^1/2 C_Y C_X^1/2, computed by
    symmetric eigendecompositions; it stays exact when a covariance is
    singular (pixels that never vary, features that are always zero), where
    a general matrix square root of C_X C_Y is unstable. The samples are
    first divided by a power of two near their largest magnitude (exact),
    so data of any scale neither overflow nor underflow in the covariances.

    References
    ----------
    .. [1] D. C. Dowson and B. V. Landau, "The Frechet distance between
       multivariate normal distributions", Journal of Multivariate Analysis,
       1982.
    .. [2] M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler and
       S. Hochreiter, "GANs trained by a two time-scale update rule converge
       to a local Nash equilibrium", NeurIPS 2017.

    Examples
    --------
    Shifting a sample by (3, 4) moves its mean by a distance of 5:

    >>> import numpy as np
    >>> from skspread.metrics import frechet_distance
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> round(frechet_distance(X + [3.0, 4.0], X), 6)
    25.0

    In a feature space, here the first principal component of ``X``, along
    which ``X`` has a variance v of about 1.05: the distance of ``2 * X`` is
    (2 - 1)^2 v.

    >>> from sklearn.decomposition import PCA
    >>> pca = PCA(n_components=1).fit(X)
    >>> round(frechet_distance(2 * X, X, features=pca), 2)
    1.05
    """
    if features is not None and not (hasattr(features, "transform") or callable(features)):
        raise InvalidParameterError(
            "features must be a fitted transformer (with a transform method), a "
            f"callable or None; got {features!r}."
        )
    samples = []
    for name, sample in (("X", X), ("Y", Y)):
        if features is None:
            sample = check_real_array(sample, name, ndim=2, dtype=None)
        else:
            sample = check_real_array(sample, name, min_ndim=2, dtype=None)
            n_samples = sample.shape[0]
            mapped = features.transform(sample) if hasattr(features, "transform") else (
                features(sample)
            )
            sample = check_real_array(mapped, f"features({name})", ndim=2, dtype=None)
            if sample.shape[0] != n_samples:
                raise ValueError(
                    f"features maps the {n_samples} rows of {name} to {sample.shape[0]} "
                    "rows; it must map each sample to one row of features."
                )
        if sample.shape[0] < 2:
            raise ValueError(
                f"{name} has {sample.shape[0]} sample; a covariance needs at least 2."
            )
        samples.append(sample)
    X, Y = samples
    if X.shape[1] != Y.shape[1]:
        what = "features" if features is None else "output features"
        raise ValueError(
            f"X and Y must have the same number of {what}; got {X.shape[1]} and "
            f"{Y.shape[1]}."
        )
    unit = power_of_two_unit(np.max(np.abs(X)), np.max(np.abs(Y)))
    X = np.asarray(X, dtype=np.float64) / unit
    Y = np.asarray(Y, dtype=np.float64) / unit
    mean_difference = X.mean(axis=0) - Y.mean(axis=0)
    cov_x = np.atleast_2d(np.cov(X, rowvar=False))
    cov_y = np.atleast_2d(np.cov(Y, rowvar=False))
    values, vectors = linalg.eigh(cov_x)
    root_x = (vectors * _root_of_eigenvalues(values)) @ vectors.T
    trace_root = np.sum(_root_of_eigenvalues(linalg.eigvalsh(root_x @ cov_y @ root_x)))
    distance = (
        mean_difference @ mean_difference + np.trace(cov_x) + np.trace(cov_y) - 2 * trace_root
    )
    # A distance of equal samples can round to a tiny negative number.
    distance = max(float(distance), 0.0) * unit * unit
    return float(
        check_finite_result(
            distance, "The Frechet distance", "X and Y differ by more than about 1e154."
        )
    )


def _root_of_eigenvalues(values):
    """Square roots of the eigenvalues of a positive semi-definite matrix.

    Eigenvalues below the rounding error of the largest (D eps max) are
    zeros of a singular matrix: taking them as 0 avoids adding their
    square roots, of order sqrt(eps), to the distance.
    """
    tolerance = len(values) * np.finfo(values.dtype).eps * np.max(np.abs(values))
    return np.sqrt(np.where(values > tolerance, values, 0.0))


def _unit_columns(A):
    """The columns of ``A`` scaled to unit norm (a zero column stays zero)."""
    largest = np.max(np.abs(A), axis=0)
    # Dividing by the largest entry first keeps the squares of the norm in range.
    scaled = A / np.where(largest > 0, largest, 1.0)
    norms = np.linalg.norm(scaled, axis=0)
    return scaled / np.where(norms > 0, norms, 1.0)
