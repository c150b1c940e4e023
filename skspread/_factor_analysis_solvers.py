"""Numerics of SpreadFactorAnalysis: data moments, the closed form, the spread-EM, rotations.

Plain functions on arrays; :class:`~skspread.SpreadFactorAnalysis` validates,
orchestrates and stores the fitted attributes. Everything here works in
float64, whatever the dtype of the data.
"""

# Authors: The skspread developers
# SPDX-License-Identifier: BSD-3-Clause

from math import log, pi, sqrt

import numpy as np
from scipy import linalg
from sklearn.utils.extmath import randomized_svd

from ._squarem import remaining_increase

__all__ = []

# Rows per block when the scatter matrix is accumulated: bounds the float64
# copy of the centred rows (4096 x D) whatever the size and dtype of X.
_BLOCK_ROWS = 4096


def _data_moments(X):
    """Sample count, mean and scatter sum((x - mean)(x - mean)^T) of ``X``, in float64.

    The rows are centred block by block before the product: the uncentred
    formula X^T X - N mu mu^T loses about log10(mu_j^2 / var_j) digits, and a
    float32 product would accumulate in float32.
    """
    n_samples, n_features = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((n_features, n_features))
    for start in range(0, n_samples, _BLOCK_ROWS):
        block = X[start : start + _BLOCK_ROWS].astype(np.float64) - mean
        scatter += block.T @ block
    return n_samples, mean, scatter


# Headroom under the largest float for the sums and products of the second
# moments (traces, whitening, eigensolvers, the stored variances): data
# whose covariance's trace is within this factor of it are refused.
_SECOND_MOMENT_MARGIN = 1e6


def _check_second_moments(covariance, dtype):
    """Refuse data whose second moments overflow ``dtype``, the fitted arrays' dtype."""
    largest = np.finfo(dtype).max / _SECOND_MOMENT_MARGIN
    with np.errstate(over="ignore"):
        overflows = not np.trace(covariance) < largest
    if overflows:
        raise ValueError(
            f"The data's second moments overflow {np.dtype(dtype).name} (the values "
            f"reach about {sqrt(largest):.0e} or beyond): rescale X, for "
            "instance divide it by its largest absolute value, and a fixed "
            "noise_variance or spread_scale with it (the fit is equivariant to the "
            "data's units)."
        )


def _top_eigenpairs(matrix, n_components, svd_method, random_state):
    """Largest eigenvalues (descending) and their eigenvectors (columns) of a PSD matrix."""
    n_features = matrix.shape[0]
    if n_components == 0:
        return np.zeros(0), np.zeros((n_features, 0))
    if svd_method == "lapack":
        values, vectors = linalg.eigh(
            matrix,
            subset_by_index=[n_features - n_components, n_features - 1],
            check_finite=False,
        )
        return values[::-1], vectors[:, ::-1]
    vectors, values, _ = randomized_svd(matrix, n_components, random_state=random_state)
    return values, vectors


def _fit_isotropic(
    covariance, n_components, noise_variance, spread_variance, svd_method, random_state
):
    """Closed-form spread MLE of W for a fixed isotropic noise gamma^2 (paper eq 7-12).

    The spread data have covariance S + sigma^2 I and the model
    W W^T + (gamma^2 + sigma^2) I, so the probabilistic-PCA solution with
    noise gamma^2 + sigma^2 applies and sigma cancels from W:
    W = U_K diag(max(lambda_k - gamma^2, 0))^(1/2).

    Returns
    -------
    components : ndarray of shape (n_components, n_features)
    loglike : float
        Mean spread log-likelihood of the training data at the solution.
    """
    n_features = covariance.shape[0]
    values, vectors = _top_eigenpairs(covariance, n_components, svd_method, random_state)
    # Round-off can make the eigenvalues of a singular S slightly negative.
    values = np.maximum(values, 0.0)
    components = (np.sqrt(np.maximum(values - noise_variance, 0.0)) * vectors).T

    floor_variance = noise_variance + spread_variance
    model_variances = np.maximum(values, noise_variance) + spread_variance
    n_rest = n_features - n_components
    rest = max(np.trace(covariance) - values.sum(), 0.0)
    log_det = np.sum(np.log(model_variances)) + n_rest * log(floor_variance)
    mahalanobis = (
        np.sum((values + spread_variance) / model_variances)
        + (rest + n_rest * spread_variance) / floor_variance
    )
    loglike = -0.5 * (n_features * log(2.0 * pi) + log_det + mahalanobis)
    return components, loglike


def _noise_start(noise_variance_init, covariance):
    """Starting Psi of the spread-EM: ``noise_variance_init`` checked, or the feature variances."""
    n_features = len(covariance)
    if noise_variance_init is None:
        # All variance unexplained: a statistic of the data, so the iterates
        # scale with the units of X.
        return np.diag(covariance).copy()
    noise_init = np.asarray(noise_variance_init, dtype=np.float64)
    if noise_init.shape != (n_features,):
        raise ValueError(
            f"noise_variance_init has shape {noise_init.shape}, but the data have "
            f"{n_features} features: give one starting variance per feature."
        )
    if not np.all(np.isfinite(noise_init)) or np.any(noise_init < 0):
        raise ValueError(
            "noise_variance_init must hold finite non-negative variances; "
            f"got {noise_variance_init!r}."
        )
    return noise_init


def _fit_diagonal(
    covariance,
    n_components,
    spread_variance,
    noise_init,
    noise_floor,
    max_iter,
    tol,
    svd_method,
    random_state,
    verbose,
):
    """Spread-EM for factor analysis on the statistics S + sigma^2 I.

    Each iteration maximises over W exactly for the current total noise
    Phi = Psi + sigma^2 I (top eigenpairs of Phi^-1/2 (S + sigma^2 I) Phi^-1/2,
    Barber, BRML algorithm 21.1, as scikit-learn's FactorAnalysis does on the
    data), then takes the EM step for Psi,
    Psi = diag(S + sigma^2 I - W W^T) - sigma^2, kept >= ``noise_floor``.
    Both steps increase the spread log-likelihood. With spread the floor is 0:
    Phi stays >= sigma^2, so a feature without noise (a Heywood case) reaches
    Psi_j = 0 exactly and the likelihood stays finite.

    Parameters
    ----------
    noise_init : ndarray of shape (n_features,)
        Starting Psi (raised to ``noise_floor``).
    tol : float
        Stop when the mean log-likelihood per sample is estimated to be
        within ``tol`` of its maximum (see ``remaining_increase``).

    Returns
    -------
    components : ndarray of shape (n_components, n_features)
    noise_variance : ndarray of shape (n_features,)
    loglike : list of float
        Mean spread log-likelihood of the training data at each iteration.
    n_iter : int
    converged : bool
    """
    n_features = covariance.shape[0]
    variances = np.diag(covariance)
    noise_variance = np.maximum(noise_init, noise_floor)
    log_2pi = n_features * log(2.0 * pi)
    loglike = []
    previous, last_increase = -np.inf, np.inf
    converged = False
    for n_iter in range(1, max_iter + 1):
        total_noise = noise_variance + spread_variance
        scale = np.sqrt(total_noise)
        whitened = covariance / np.outer(scale, scale)
        whitened.flat[:: n_features + 1] += spread_variance / total_noise
        values, vectors = _top_eigenpairs(whitened, n_components, svd_method, random_state)
        components = (np.sqrt(np.maximum(values - 1.0, 0.0)) * vectors).T * scale

        # At the optimal W, C^-1/2 (S + sigma^2 I) C^-1/2 has the eigenvalues
        # min(lambda_k, 1) on the K fitted directions and lambda_k elsewhere.
        unexplained = np.trace(whitened) - values.sum()
        current = -0.5 * (
            log_2pi
            + np.sum(np.log(total_noise))
            + np.sum(np.log(np.maximum(values, 1.0)))
            + np.sum(np.minimum(values, 1.0))
            + unexplained
        )
        loglike.append(current)
        if verbose:
            print(
                f"[SpreadFactorAnalysis] iteration {n_iter}: "
                f"mean log-likelihood per sample {current:.10g}"
            )
        increase = current - previous
        if remaining_increase(increase, last_increase) < tol:
            converged = True
            break
        previous, last_increase = current, increase
        noise_variance = np.maximum(variances - np.sum(components**2, axis=0), noise_floor)
    return components, noise_variance, loglike, n_iter, converged


def _posterior_mean_map(components, noise_variance):
    """Matrix P with E[z | x] = (x - mu) P for the model x = z W + mu + N(0, diag(Psi))."""
    if np.all(noise_variance > 0):
        weighted = components / noise_variance
        precision_z = weighted @ components.T
        precision_z.flat[:: len(precision_z) + 1] += 1.0
        return linalg.solve(precision_z, weighted, assume_a="pos").T
    # Zero noise somewhere: the posterior mean W C^+ (x - mu), with C the model
    # covariance, is the limit as the noise vanishes; for the deterministic
    # model it is the least-squares latent pinv(W) (x - mu).
    covariance = components.T @ components
    covariance.flat[:: len(covariance) + 1] += noise_variance
    return linalg.pinvh(covariance) @ components.T


def _orient(components):
    """Flip each row so that its largest-magnitude entry is positive (a fixed sign).

    Entries within a relative 1e-8 of a row's largest magnitude count as
    tied, and the first of them decides: on symmetric loadings (a row
    +-1.2144, +-0.75 on make_ica data) rounding otherwise chose between the
    tied entries by the input's memory layout, and flipped the row.
    """
    if components.size == 0:
        return components
    magnitudes = np.abs(components)
    tied = magnitudes >= (1.0 - 1e-8) * magnitudes.max(axis=1, keepdims=True)
    largest = np.argmax(tied, axis=1)
    signs = np.sign(components[np.arange(len(components)), largest])
    signs[signs == 0] = 1.0
    return components * signs[:, np.newaxis]


def _rotate(components, method, tol=1e-6, max_iter=100):
    """Orthogonal rotation of the loadings maximising the varimax or quartimax criterion.

    With L = W^T (features x factors) the orthomax criterion
    sum_jk L_jk^4 - (gamma / D) sum_k (sum_j L_jk^2)^2 (gamma = 1 varimax,
    gamma = 0 quartimax; Kaiser, 1958) is increased by the standard fixed
    point: the rotation R = U V^T from the SVD U S V^T of its gradient
    L^T (L_R^3 - (gamma / D) L_R diag(sum_j L_R^2)), until sum(S) grows by a
    relative ``tol`` or less. W W^T, and so every likelihood, is unchanged.

    Parameters
    ----------
    components : ndarray of shape (n_components, n_features)
    method : {'varimax', 'quartimax'}

    Returns
    -------
    rotated : ndarray of shape (n_components, n_features)
    """
    loadings = components.T
    n_features, n_components = loadings.shape
    if n_components < 2:
        return components
    gamma = 1.0 if method == "varimax" else 0.0
    rotation = np.eye(n_components)
    criterion = 0.0
    for _ in range(max_iter):
        rotated = loadings @ rotation
        column_power = np.sum(rotated**2, axis=0)
        gradient = loadings.T @ (rotated**3 - (gamma / n_features) * rotated * column_power)
        left, singular_values, right = linalg.svd(gradient)
        rotation = left @ right
        new_criterion = np.sum(singular_values)
        if criterion != 0 and new_criterion < criterion * (1 + tol):
            break
        criterion = new_criterion
    return (loadings @ rotation).T
