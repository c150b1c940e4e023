"""Closed forms of the spread KL divergence (Zhang et al., 2020, section 2).

The spread divergence of P and Q is the divergence of their spread versions,
KL(k * p || k * q) (paper eq 13-16). For the distributions below the
convolution stays in closed form:

- two deltas under Gaussian spread N(0, Sigma): two Gaussians with the same
  covariance, KL = (mu_p - mu_q)^T Sigma^-1 (mu_p - mu_q) / 2, which is
  ||mu_p - mu_q||^2 for Sigma = 0.5 I (paper eq 26-27);
- two deltas under Laplace spread of scale b: per coordinate, with
  ``x = |mu_p - mu_q| / b``, KL = x + exp(-x) - 1;
- two Gaussians N(a, C1), N(b, C2) (possibly degenerate, such as the linear
  implicit models of paper eq 35-36) under Gaussian spread Sigma:
  KL(N(a, C1 + Sigma) || N(b, C2 + Sigma)).

Spreading both arguments with the same kernel never increases their KL
divergence (data processing), and a valid kernel keeps it zero only for equal
distributions (paper eq 19-23).
"""

import math

import numpy as np
from scipy import linalg

from ._checks import check_finite_result, check_real_array, power_of_two_unit
from .spread import BaseSpread, GaussianSpread, LaplaceSpread

__all__ = ["gaussian_kl", "spread_kl"]


def _as_mean(mean, name):
    mean = np.atleast_1d(check_real_array(mean, name))
    if mean.ndim != 1:
        raise ValueError(f"{name} must be a vector (n_features,); got shape {mean.shape}.")
    return mean


def _as_means(mean_p, mean_q):
    """Validate the two means as finite vectors of the same length."""
    mean_p = _as_mean(mean_p, "mean_p")
    mean_q = _as_mean(mean_q, "mean_q")
    if mean_p.shape != mean_q.shape:
        raise ValueError(
            f"mean_p and mean_q must have the same shape; got {mean_p.shape} and "
            f"{mean_q.shape}."
        )
    return mean_p, mean_q


def _as_covariance(cov, n_features, name, *, definite):
    """Validate a covariance: a scalar c (meaning c * I) or a symmetric matrix.

    ``definite`` asks for positive definiteness, else positive
    semi-definiteness suffices (a degenerate Gaussian, such as a delta).
    """
    cov = check_real_array(cov, name)
    if cov.ndim == 0:
        cov = cov * np.eye(n_features)
    if cov.shape != (n_features, n_features):
        raise ValueError(
            f"{name} must be a scalar or of shape ({n_features}, {n_features}) to "
            f"match the means; got shape {cov.shape}."
        )
    scale = max(float(np.max(np.abs(cov))), np.finfo(float).tiny)
    # Halves first: the sum of two entries near the float limit would overflow.
    if not np.all(np.abs(0.5 * cov - 0.5 * cov.T) <= 0.5e-10 * scale):
        raise ValueError(f"{name} must be symmetric.")
    cov = 0.5 * cov + 0.5 * cov.T
    smallest = float(linalg.eigvalsh(cov)[0])
    if definite and smallest <= 0:
        raise ValueError(
            f"{name} must be positive definite; its smallest eigenvalue is {smallest:.3g}."
        )
    if not definite and smallest < -1e-10 * scale:
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is "
            f"{smallest:.3g}."
        )
    return cov


def _cholesky(cov, name):
    try:
        return linalg.cholesky(cov, lower=True)
    except linalg.LinAlgError:
        raise ValueError(
            f"{name} is not numerically positive definite (its Cholesky "
            "factorisation failed)."
        ) from None


def _gaussian_kl(difference, cov_p, cov_q, names=("cov_p", "cov_q")):
    """KL of two Gaussians with validated positive definite covariances.

    With L_q the Cholesky factor of C_q and lambda_i the eigenvalues of
    L_q^-1 C_p L_q^-T (the squared singular values sigma_i of L_q^-1 L_p),
    KL = (sum_i (lambda_i - 1 - log lambda_i) + ||L_q^-1 (a - b)||^2) / 2,
    for ``difference`` = a - b. Every term is non-negative in floating
    point, so KL >= 0 exactly.
    """
    chol_p = _cholesky(cov_p, names[0])
    chol_q = _cholesky(cov_q, names[1])
    # check_finite=False: an overflow (means far apart in the spread's units)
    # reaches check_finite_result below, which names it, instead of SciPy's
    # anonymous "array must not contain infs or NaNs".
    sigma = linalg.svdvals(
        linalg.solve_triangular(chol_q, chol_p, lower=True, check_finite=False),
        check_finite=False,
    )
    with np.errstate(over="ignore", divide="ignore"):
        ratio = np.square(sigma)
        excess = ratio - 1.0
        # Near lambda = 1 the terms cancel: excess - log1p(excess) keeps the
        # digits. Far below 1, lambda - 1 rounds to -1 and loses lambda, whose
        # logarithm is taken from sigma instead (log space: lambda may underflow).
        near_one = ratio > 0.5
        terms = np.where(
            near_one,
            excess - np.log1p(np.where(near_one, excess, 0.0)),
            excess - 2.0 * np.log(sigma),
        )
        whitened = linalg.solve_triangular(chol_q, difference, lower=True, check_finite=False)
        kl = 0.5 * float(np.sum(terms) + whitened @ whitened)
    return check_finite_result(
        kl,
        "The KL divergence",
        "mean_p and mean_q are too far apart, or cov_p and cov_q too different, "
        "for a divergence below 1.8e308.",
    )


def gaussian_kl(mean_p, cov_p, mean_q, cov_q):
    """KL divergence KL(N(mean_p, cov_p) || N(mean_q, cov_q)) of two Gaussians.

    KL = (tr(C_q^-1 C_p) + (a - b)^T C_q^-1 (a - b) - D + log|C_q| - log|C_p|) / 2
    for means a, b and covariances C_p, C_q in dimension D.

    Parameters
    ----------
    mean_p : array-like of shape (n_features,)
        Mean a of the first Gaussian.
    cov_p : float or array-like of shape (n_features, n_features)
        Its positive definite covariance; a scalar c means c * I.
    mean_q : array-like of shape (n_features,)
        Mean b of the second Gaussian.
    cov_q : float or array-like of shape (n_features, n_features)
        Its positive definite covariance; a scalar c means c * I.

    Returns
    -------
    kl : float
        The divergence in nats, >= 0.

    Raises
    ------
    ValueError
        If the shapes disagree, an input is empty or not finite, a covariance
        is not symmetric positive definite (a degenerate Gaussian has no
        density: spread it first, see :func:`spread_kl`), or the divergence
        exceeds the float64 range.
    TypeError
        If an argument does not hold real numbers.

    See Also
    --------
    spread_kl : The divergence of the spread distributions.

    Examples
    --------
    >>> from skspread.divergence import gaussian_kl
    >>> gaussian_kl([0.0], 1.0, [1.0], 1.0)
    0.5
    >>> round(gaussian_kl([0.0, 0.0], 2.0, [0.0, 0.0], 1.0), 6)
    0.306853
    """
    mean_p, mean_q = _as_means(mean_p, mean_q)
    n_features = mean_p.shape[0]
    cov_p = _as_covariance(cov_p, n_features, "cov_p", definite=True)
    cov_q = _as_covariance(cov_q, n_features, "cov_q", definite=True)
    return _gaussian_kl(_scaled_difference(mean_p, mean_q, 1.0), cov_p, cov_q)


def _scaled_difference(mean_p, mean_q, unit):
    """(mean_p - mean_q) / unit without overflow in the difference.

    Halving first is exact and keeps two means near the float limit, of
    opposite signs, from overflowing when ``unit`` is large enough for the
    result to be finite.
    """
    with np.errstate(over="ignore"):
        return 2.0 * ((0.5 * mean_p - 0.5 * mean_q) / unit)


def _laplace_delta_kl(mean_p, mean_q, scale):
    # x + exp(-x) - 1 written with expm1, accurate for small x where it is x^2/2.
    x = np.abs(_scaled_difference(mean_p, mean_q, scale))
    with np.errstate(over="ignore"):
        return float(np.sum(x + np.expm1(-x)))


def _gaussian_delta_kl(mean_p, mean_q, scale):
    # ||d||^2 / (2 s^2) as ||d / s||^2 / 2: s^2 may over- or underflow.
    x = _scaled_difference(mean_p, mean_q, scale)
    with np.errstate(over="ignore"):
        return 0.5 * float(x @ x)


def _spread_gaussian_kl(mean_p, cov_p, mean_q, cov_q, spread_std, spread_shape):
    """KL(N(a, C_p + s^2 S) || N(b, C_q + s^2 S)) for the spread covariance s^2 S.

    The KL divergence is invariant to the change of units x -> x / u. With u
    a power of two near the largest standard deviation (exact division),
    the covariances stay in range where s^2 itself would over- or underflow.
    """
    unit = power_of_two_unit(
        spread_std, math.sqrt(np.max(np.abs(cov_p))), math.sqrt(np.max(np.abs(cov_q)))
    )
    relative_std = spread_std / unit
    spread_cov = (relative_std * relative_std) * spread_shape
    return _gaussian_kl(
        _scaled_difference(mean_p, mean_q, unit),
        (cov_p / unit) / unit + spread_cov,
        (cov_q / unit) / unit + spread_cov,
        names=("cov_p plus the spread covariance", "cov_q plus the spread covariance"),
    )


def spread_kl(mean_p, mean_q, spread, *, cov_p=None, cov_q=None):
    """Spread KL divergence KL(k * p || k * q) in closed form.

    ``p`` and ``q`` are deltas at ``mean_p`` and ``mean_q`` when no covariance
    is given (paper eq 26), else Gaussians N(mean_p, cov_p) and
    N(mean_q, cov_q) whose covariances may be singular (a delta is the
    covariance 0; a linear implicit model x = a + A z has covariance A A^T,
    paper eq 35-36). Their KL divergence is then undefined, but the
    divergence of their spread versions is finite and is zero only when
    p = q (paper eq 19-23).

    Parameters
    ----------
    mean_p, mean_q : array-like of shape (n_features,)
        Locations of the two distributions.
    spread : GaussianSpread, LaplaceSpread or array-like
        The spread noise k: a spread object, or the covariance Sigma of a
        Gaussian spread N(0, Sigma), either a scalar variance (Sigma =
        variance * I) or a positive definite matrix of shape (n_features,
        n_features), such as the learned sigma^2 I + U U^T of paper
        section 3.1.
    cov_p, cov_q : float or array-like of shape (n_features, n_features), \
            default=None
        Positive semi-definite covariances of p and q; None (or 0) for a
        delta. Only Gaussian spread has a closed form with a covariance.

    Returns
    -------
    kl : float
        The spread divergence in nats, >= 0.

    Raises
    ------
    ValueError
        On mismatched shapes, empty or non-finite values, a covariance that
        is not symmetric positive semi-definite, a spread covariance that is
        not positive definite, a spread without a closed form here (a name
        string, None, a custom kernel), Laplace spread with a covariance, or
        a divergence beyond the float64 range.
    TypeError
        If an argument does not hold real numbers.

    See Also
    --------
    gaussian_kl : KL of two Gaussians with densities.
    skspread.spread.GaussianSpread : Gaussian spread noise.
    skspread.spread.LaplaceSpread : Laplace spread noise.

    Notes
    -----
    Closed forms, with d = mean_p - mean_q:

    - deltas, Gaussian spread N(0, sigma^2 I): ||d||^2 / (2 sigma^2); with
      sigma^2 = 0.5 this is ||d||^2, the paper's eq 27 (and the squared
      2-Wasserstein distance of the deltas);
    - deltas, Laplace spread of scale b: ``sum_i |d_i|/b + exp(-|d_i|/b) - 1``;
    - Gaussians, Gaussian spread Sigma:
      ``gaussian_kl(mean_p, cov_p + Sigma, mean_q, cov_q + Sigma)``.

    Both delta forms are symmetric in p and q; the Gaussian form in general
    is not. The divergence is invariant to a change of units, so it is
    computed in units of the spread (d / sigma, d / b) or of the largest
    standard deviation: sigma^2 may over- or underflow where the divergence
    itself is an ordinary float.

    References
    ----------
    .. [1] M. Zhang, P. Hayes, T. Bird, R. Habib and D. Barber, "Spread
       Divergence", ICML 2020.

    Examples
    --------
    Two deltas under Gaussian spread of variance 0.5 (paper eq 27):

    >>> import math
    >>> from skspread.divergence import spread_kl
    >>> from skspread.spread import GaussianSpread, LaplaceSpread
    >>> round(spread_kl([0.0, 0.0], [1.0, 2.0], GaussianSpread(math.sqrt(0.5))), 12)
    5.0
    >>> round(spread_kl([0.0], [1.0], LaplaceSpread(1.0)), 6)
    0.367879

    Two parallel lines x = a + A z and x = b + A z with A = (1, 1)^T
    (degenerate Gaussians of covariance A A^T), under spread Sigma = 0.5 I:

    >>> cov = [[1.0, 1.0], [1.0, 1.0]]
    >>> round(spread_kl([0.0, 0.0], [1.0, -1.0], 0.5, cov_p=cov, cov_q=cov), 6)
    2.0
    """
    mean_p, mean_q = _as_means(mean_p, mean_q)
    n_features = mean_p.shape[0]
    deltas = cov_p is None and cov_q is None

    overflow_advice = (
        "mean_p and mean_q are too far apart for the spread's scale; use a wider spread."
    )
    if isinstance(spread, LaplaceSpread):
        if not deltas:
            raise ValueError(
                "The spread KL of Gaussians under Laplace spread has no closed form; "
                "only deltas (cov_p=None, cov_q=None) are supported with LaplaceSpread."
            )
        return check_finite_result(
            _laplace_delta_kl(mean_p, mean_q, spread.scale), "The spread KL", overflow_advice
        )
    if isinstance(spread, GaussianSpread):
        if deltas:
            return check_finite_result(
                _gaussian_delta_kl(mean_p, mean_q, spread.scale),
                "The spread KL",
                overflow_advice,
            )
        spread_std, spread_shape = spread.scale, np.eye(n_features)
    elif spread is None or isinstance(spread, (str, BaseSpread)):
        raise ValueError(
            "spread must be a GaussianSpread or LaplaceSpread instance (with its "
            "scale) or the covariance of a Gaussian spread; got "
            f"{spread!r}. Without spread the KL of deltas is undefined; for two "
            "Gaussians with densities use gaussian_kl."
        )
    else:
        spread_cov = _as_covariance(spread, n_features, "spread", definite=True)
        # A power of two near the largest standard deviation: S = Sigma / s^2 exactly.
        spread_std = power_of_two_unit(math.sqrt(np.max(np.diag(spread_cov))))
        spread_shape = (spread_cov / spread_std) / spread_std

    cov_p = _as_covariance(0.0 if cov_p is None else cov_p, n_features, "cov_p", definite=False)
    cov_q = _as_covariance(0.0 if cov_q is None else cov_q, n_features, "cov_q", definite=False)
    return _spread_gaussian_kl(mean_p, cov_p, mean_q, cov_q, spread_std, spread_shape)
