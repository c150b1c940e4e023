"""The Gaussian log-density with a low-rank plus isotropic covariance, by Woodbury.

Public as :func:`skspread.spread.lowrank_gaussian_log_prob`; it computes in
the namespace of its input (NumPy or torch), one implementation for both.
"""

import math

import numpy as np

from ._array_namespace import _namespace
from ._checks import check_finite_result, check_operands, check_scale


def lowrank_gaussian_log_prob(E, scale, factor):
    """Log-density of N(0, scale^2 I + U U^T) at the rows of ``E``, by Woodbury.

    Never forms a D x D matrix: with s = scale and R = rank,
    ``Sigma^-1 = s^-2 I - s^-4 U (I_R + s^-2 U^T U)^-1 U^T`` and
    ``log |Sigma| = log det(I_R + s^-2 U^T U) + D log s^2``, computed in
    units of s (with E / s and U / s), so that s^2 is never formed.

    Parameters
    ----------
    E : array (NumPy or torch) of shape (n_samples, n_features)
        Residuals y - x.
    scale : float
        Isotropic standard deviation s, within [1e-300, 1e300].
    factor : array of shape (n_features, rank)
        Low-rank factor U (same namespace as ``E``).

    Returns
    -------
    log_prob : array of shape (n_samples,)

    Raises
    ------
    ValueError
        If ``E`` or ``factor`` is empty, not 2-D or not finite, their
        shapes disagree, ``scale`` is out of range, or (NumPy) the result
        overflows. Tensors are checked for dtype and shape only.
    TypeError
        If an argument does not hold real numbers, or one is a tensor and
        the other not.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_normal
    >>> from skspread.spread import lowrank_gaussian_log_prob
    >>> rng = np.random.default_rng(0)
    >>> U, E = rng.normal(size=(4, 2)), rng.normal(size=(3, 4))
    >>> dense = multivariate_normal(np.zeros(4), 0.25 * np.eye(4) + U @ U.T).logpdf(E)
    >>> bool(np.allclose(lowrank_gaussian_log_prob(E, 0.5, U), dense))
    True
    """
    E, factor = check_operands({"E": E, "factor": factor}, ndim=2)
    scale = check_scale(scale, "scale")
    if factor.shape[0] != E.shape[1]:
        raise ValueError(
            f"factor has {factor.shape[0]} rows but E has {E.shape[1]} columns: factor "
            "must be of shape (n_features, rank) for E of shape (n_samples, n_features)."
        )
    xp = _namespace(E)
    n_features, rank = factor.shape
    # In units of the scale, Sigma = s^2 (I + V V^T) with V = U / s: s^2 is
    # never formed, as it may over- or underflow, and log s^2 = 2 log s.
    with np.errstate(over="ignore", invalid="ignore"):
        E = E / scale
        factor = factor / scale
        capacitance = factor.T @ factor
    if xp is np:
        if not np.all(np.isfinite(E)):
            raise ValueError(
                "E / scale overflows float64: E is too many scales from 0 for this scale."
            )
        if not np.all(np.isfinite(capacitance)):
            raise ValueError(
                "factor / scale overflows float64 in U^T U / scale^2: factor is too "
                "large relative to scale."
            )
        capacitance = capacitance + np.eye(rank, dtype=capacitance.dtype)
    else:
        capacitance = capacitance + xp.eye(
            rank, dtype=capacitance.dtype, device=capacitance.device
        )
    try:
        cholesky = xp.linalg.cholesky(capacitance)
    except np.linalg.LinAlgError:
        # NumPy only: torch raises its own error, on a matrix from its own code.
        raise ValueError(
            "I + U^T U / scale^2 is not numerically positive definite: the columns "
            "of factor are too large relative to scale (or too nearly parallel)."
        ) from None
    # An overflow below leaves an infinite or NaN result, refused at the end.
    with np.errstate(over="ignore", invalid="ignore"):
        projected = (E @ factor).T
        if xp is np:
            from scipy.linalg import solve_triangular

            whitened = solve_triangular(cholesky, projected, lower=True, check_finite=False)
            log_det_capacitance = 2.0 * np.sum(np.log(np.diag(cholesky)))
        else:
            whitened = xp.linalg.solve_triangular(cholesky, projected, upper=False)
            log_det_capacitance = 2.0 * xp.sum(xp.log(xp.diagonal(cholesky)))
        mahalanobis = xp.sum(E * E, axis=-1) - xp.sum(whitened * whitened, axis=0)
    log_det = log_det_capacitance + 2.0 * n_features * math.log(scale)
    log_prob = -0.5 * (mahalanobis + log_det + n_features * math.log(2 * math.pi))
    return check_finite_result(
        log_prob, "lowrank_gaussian_log_prob", "E is too many scales from 0."
    )
