"""Error measures for estimated mixing matrices, invariant to ICA's ambiguities."""

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["amari_distance", "match_components", "mixing_error"]


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
        If ``W @ A`` is not square, not finite, or has a zero row or column.

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
    P = np.abs(np.asarray(W, dtype=float) @ np.asarray(A, dtype=float))
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(
            f"W @ A must be square; got W of shape {np.shape(W)} and A of shape {np.shape(A)}."
        )
    if not np.all(np.isfinite(P)):
        raise ValueError("W and A must be finite.")
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
    A_est = np.asarray(A_est, dtype=float)
    A_true = np.asarray(A_true, dtype=float)
    if A_est.shape != A_true.shape or A_est.ndim != 2:
        raise ValueError(
            f"A_est and A_true must be 2-D of the same shape; got {A_est.shape} "
            f"and {A_true.shape}."
        )
    est = A_est / np.linalg.norm(A_est, axis=0)
    true = A_true / np.linalg.norm(A_true, axis=0)
    similarity = true.T @ est
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
    A_true = np.asarray(A_true, dtype=float)
    if np.any(A_true == 0):
        raise ValueError("A_true has zero entries: the relative error is undefined.")
    A_matched = match_components(A_est, A_true)
    return float(np.mean(np.abs(A_matched - A_true) / np.abs(A_true)))
