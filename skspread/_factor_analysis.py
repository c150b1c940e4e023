"""Spread factor analysis: linear Gaussian implicit models fitted by spread maximum likelihood.

The model is x = W z + mu + eps with z ~ N(0, I_K) and eps ~ N(0, Psi). With
Gaussian spread y = x + sigma e the spread model is y ~ N(mu, C),
C = W W^T + Psi + sigma^2 I, and the expected log-likelihood of the spread
data depends on the data only through the mean and the covariance S of x
(the spread adds sigma^2 I to it). The estimator therefore computes these
statistics once; every further step costs O(D^3), independent of N, and no
spread sample is ever drawn.
"""

# Authors: The skspread developers
# SPDX-License-Identifier: BSD-3-Clause

import warnings
from math import log, pi
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import randomized_svd
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseSpreadEstimator, atomic_fit, check_n_samples
from .spread import GaussianSpread

__all__ = ["SpreadFactorAnalysis"]

# The uncentred formula S = X^T X / N - mu mu^T (one BLAS call, no copy of X)
# loses about log10(mu_j^2 / S_jj) digits; beyond this ratio (about 12 of 16
# digits kept) the rows are centred block by block instead.
_MAX_MEAN_SQUARE_TO_VARIANCE = 1e4
_BLOCK_ROWS = 4096

# The noise-only baseline divides by the noise variances, so they are floored
# at this fraction of the mean feature variance (FactorAnalysis floors them at
# 1e-12 in absolute terms; a relative floor keeps the fit equivariant to units).
_RELATIVE_NOISE_FLOOR_WITHOUT_SPREAD = 1e-12


def _mean_and_covariance(X):
    """Column means and biased (1/N) covariance of ``X``."""
    n_samples, n_features = X.shape
    mean = X.mean(axis=0)
    covariance = X.T @ X / n_samples - np.outer(mean, mean)
    if np.all(mean**2 <= _MAX_MEAN_SQUARE_TO_VARIANCE * np.diag(covariance)):
        return mean, covariance
    scatter = np.zeros((n_features, n_features))
    for start in range(0, n_samples, _BLOCK_ROWS):
        block = X[start : start + _BLOCK_ROWS] - mean
        scatter += block.T @ block
    return mean, scatter / n_samples


def _top_eigenpairs(matrix, n_components, svd_method, random_state):
    """Largest eigenvalues (descending) and their eigenvectors (columns) of a PSD matrix."""
    n_features = matrix.shape[0]
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
    """Closed-form spread MLE of W for a fixed isotropic noise gamma^2 (spec section 3).

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


def _fit_diagonal(
    covariance,
    n_components,
    spread_variance,
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
    # Start from the feature variances (all variance unexplained): a
    # statistic of the data, so the iterates scale with the units of X.
    noise_variance = variances.copy()
    log_2pi = n_features * log(2.0 * pi)
    loglike = []
    previous = -np.inf
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
            print(f"[SpreadFactorAnalysis] iteration {n_iter}: mean log-likelihood {current:.10g}")
        if current - previous < tol:
            converged = True
            break
        previous = current
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
    """Flip each row so that its largest-magnitude entry is positive (a fixed sign)."""
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(len(components)), largest])
    signs[signs == 0] = 1.0
    return components * signs[:, np.newaxis]


class SpreadFactorAnalysis(BaseSpreadEstimator):
    """Linear Gaussian implicit model fitted by spread maximum likelihood.

    The model is x = W z + mu + eps with latent z ~ N(0, I_K) and noise
    eps ~ N(0, Psi). With ``noise_variance=0`` the model is deterministic:
    its outputs lie on a K-dimensional affine subspace and it has no
    density, so ordinary maximum likelihood is undefined. Spreading both the
    data and the model with Gaussian noise N(0, sigma^2 I) gives every model
    a density, and maximising the likelihood of the spread data (the spread
    maximum likelihood of Zhang et al., 2020) is a consistent estimator of W.
    Adding the noise to the model alone (``spread=None`` with a positive
    ``noise_variance``, the noise-only baseline) is not: it shrinks W.

    Because the expected log-likelihood of a Gaussian model is quadratic in
    the spread point, the expectation over the spread is exact and is
    computed from the data's mean and covariance: no spread sample is drawn.
    A fixed isotropic noise has a closed form; a learned diagonal noise
    (factor analysis) is fitted by a spread-EM on the same statistics.

    Parameters
    ----------
    n_components : int, default=None
        Latent dimension K. If None, the number of features.

    spread : {'gaussian'}, GaussianSpread instance or None, default='gaussian'
        Spread noise applied to data and model. None is the noise-only
        baseline: the model noise alone, fitted to the unspread data; it needs
        a positive ``noise_variance`` (or ``'diagonal'``). Only Gaussian
        spread is accepted: convolved with a Gaussian model, other kernels
        have no closed-form likelihood.

    spread_scale : float or 'auto', default='auto'
        Standard deviation sigma of the Gaussian spread when ``spread`` is a
        name (a spread object carries its own scale). 'auto' is half the
        root-mean-square standard deviation of the features, so that the fit
        does not depend on the units of ``X``. With a fixed isotropic noise
        sigma drops out of the fitted loadings.

    noise_variance : float or 'diagonal', default=0.0
        Model observation noise. A float gamma^2 >= 0 fixes Psi = gamma^2 I
        (0: the deterministic implicit model) and is solved in closed form;
        ``'diagonal'`` learns one variance per feature, as factor analysis.

    max_iter : int, default=1000
        Maximum number of spread-EM iterations (``noise_variance='diagonal'``).

    tol : float, default=1e-4
        The spread-EM stops when the mean log-likelihood per training sample
        increases by less than ``tol`` (FactorAnalysis's ``tol`` applies to the
        sum over samples).

    svd_method : {'lapack', 'randomized'}, default='lapack'
        How the top eigenpairs of the D x D statistics are found: 'lapack'
        is exact; 'randomized' (randomised SVD) is cheaper when
        n_components is much smaller than a large number of features.

    random_state : int, RandomState instance or None, default=None
        Seed of the randomised SVD (``svd_method='randomized'`` only).

    verbose : int, default=0
        Print the log-likelihood at every spread-EM iteration when positive.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Loadings W (rows), up to a rotation of the latent space; each row is
        signed so that its largest-magnitude entry is positive.

    mean_ : ndarray of shape (n_features,)
        Per-feature empirical mean mu.

    noise_variance_ : ndarray of shape (n_features,)
        Model noise variances Psi (the spread is not included).

    spread_ : GaussianSpread or None
        The spread used, None for the noise-only baseline.

    spread_scale_ : float or None
        Standard deviation sigma of the spread used, None without spread.

    n_iter_ : int
        Number of iterations run (1 for the closed form).

    loglike_ : list of float
        Mean spread log-likelihood of the training data at each iteration
        (its last entry equals ``score`` on the training data).

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.decomposition.FactorAnalysis : The noise-only model with learned
        diagonal noise; equal to ``spread=None, noise_variance='diagonal'``.
    sklearn.decomposition.PCA : Probabilistic PCA, learned isotropic noise.
    SpreadICA : The same spread estimator with non-Gaussian sources.

    Notes
    -----
    With S the (1/N) covariance of the training data and
    C = W W^T + Psi + sigma^2 I, the spread log-likelihood of a point is

        E_{y ~ N(x, sigma^2 I)} log N(y; mu, C)
            = log N(x; mu, C) - (sigma^2 / 2) tr(C^-1),

    which is :meth:`score_samples`; the mean over the training data is
    ``-1/2 (D log 2 pi + log |C| + tr(C^-1 (S + sigma^2 I)))``.

    For Psi = gamma^2 I, with eigenpairs (lambda_k, u_k) of S, the maximiser
    is W = U_K diag(max(lambda_k - gamma^2, 0))^(1/2): sigma drops out. With
    ``spread=None`` and gamma^2 > 0 the same formula is the noise-only MLE,
    biased for data from the deterministic model: on the line x = z theta it
    returns ``sqrt((|theta|^2 - gamma^2) / |theta|^2) theta`` instead of theta
    (paper eq 7-12).

    For diagonal Psi, the spread-EM is factor analysis on S + sigma^2 I with
    noise Psi + sigma^2 I, Psi kept >= 0. Its iterations cost O(D^3),
    independent of the number of samples.

    References
    ----------
    .. [1] M. Zhang, P. Hayes, T. Bird, R. Habib, D. Barber, "Spread
       Divergence", ICML 2020.
    .. [2] D. Barber, "Bayesian Reasoning and Machine Learning", Cambridge
       University Press, 2012, algorithm 21.1.

    Examples
    --------
    >>> import numpy as np
    >>> from skspread import SpreadFactorAnalysis
    >>> from skspread.datasets import make_line
    >>> line = make_line(5000, [1.2, 1.6, 0.0], random_state=0)
    >>> model = SpreadFactorAnalysis(n_components=1).fit(line.data)
    >>> np.round(model.components_, 1)
    array([[1.2, 1.6, 0. ]])
    >>> model.transform(line.data[:2]).shape
    (2, 1)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "spread": [StrOptions({"gaussian"}), GaussianSpread, None],
        "spread_scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "noise_variance": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"diagonal"}),
        ],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "svd_method": [StrOptions({"lapack", "randomized"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        spread="gaussian",
        spread_scale="auto",
        noise_variance=0.0,
        max_iter=1000,
        tol=1e-4,
        svd_method="lapack",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.spread = spread
        self.spread_scale = spread_scale
        self.noise_variance = noise_variance
        self.max_iter = max_iter
        self.tol = tol
        self.svd_method = svd_method
        self.random_state = random_state
        self.verbose = verbose

    _spread_kernels = (GaussianSpread,)

    @atomic_fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model by spread maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : SpreadFactorAnalysis
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=np.float64)
        n_features = X.shape[1]
        n_components = n_features if self.n_components is None else self.n_components
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be at most n_features={n_features}: "
                "the latent space cannot be larger than the data space."
            )
        spread = self._resolve_spread(X, self.noise_variance)
        spread_variance = 0.0 if spread is None else spread.variance
        random_state = check_random_state(self.random_state)

        mean, covariance = _mean_and_covariance(X)
        if self.noise_variance == "diagonal":
            noise_floor = 0.0
            if spread is None:
                noise_floor = _RELATIVE_NOISE_FLOOR_WITHOUT_SPREAD * max(
                    float(np.mean(np.diag(covariance))), np.finfo(float).tiny
                )
            components, noise_variance, loglike, n_iter, converged = _fit_diagonal(
                covariance,
                n_components,
                spread_variance,
                noise_floor,
                self.max_iter,
                self.tol,
                self.svd_method,
                random_state,
                self.verbose,
            )
            if not converged:
                increase = loglike[-1] - loglike[-2] if len(loglike) > 1 else np.inf
                warnings.warn(
                    f"SpreadFactorAnalysis did not converge in max_iter={self.max_iter} "
                    f"iterations (last increase of the mean log-likelihood "
                    f"{increase:.3g} > tol={self.tol:g}). Increase max_iter or tol.",
                    ConvergenceWarning,
                )
        else:
            components, final_loglike = _fit_isotropic(
                covariance,
                n_components,
                float(self.noise_variance),
                spread_variance,
                self.svd_method,
                random_state,
            )
            noise_variance = np.full(n_features, float(self.noise_variance))
            loglike, n_iter = [final_loglike], 1

        self.mean_ = mean
        self.components_ = _orient(components)
        self.noise_variance_ = noise_variance
        self._store_spread(spread)
        self.n_iter_ = n_iter
        self.loglike_ = loglike
        return self

    def transform(self, X):
        """Posterior mean E[z | x] of the latent variables under the model.

        For the deterministic model (zero noise) this is the least-squares
        latent pinv(W) (x - mu), the limit of the posterior mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Latent means.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.mean_) @ _posterior_mean_map(self.components_, self.noise_variance_)

    def inverse_transform(self, X):
        """Generator output W z + mu of latent points (without noise).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        Z = self._validate_latent(X, dtype=np.float64)
        return Z @ self.components_ + self.mean_

    def sample(self, n_samples=1, random_state=None):
        """Draw from the fitted model x = W z + mu + eps (without spread).

        With ``noise_variance=0`` the samples lie exactly on the model's
        K-dimensional affine subspace.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        rng = check_random_state(random_state)
        n_components, n_features = self.components_.shape
        latent = rng.standard_normal((n_samples, n_components))
        noise = rng.standard_normal((n_samples, n_features)) * np.sqrt(self.noise_variance_)
        return latent @ self.components_ + self.mean_ + noise

    def get_covariance(self):
        """Model covariance W^T W + diag(Psi) of x (without spread).

        Returns
        -------
        cov : ndarray of shape (n_features, n_features)
        """
        check_is_fitted(self)
        covariance = self.components_.T @ self.components_
        covariance.flat[:: len(covariance) + 1] += self.noise_variance_
        return covariance

    def get_precision(self):
        """Inverse of :meth:`get_covariance`.

        Returns
        -------
        precision : ndarray of shape (n_features, n_features)

        Raises
        ------
        ValueError
            When the model covariance is singular (a deterministic model with
            fewer components than features has no density without spread).
        """
        covariance = self.get_covariance()
        try:
            factor = linalg.cho_factor(covariance, lower=True)
        except linalg.LinAlgError as error:
            raise ValueError(
                "The model covariance is singular, so it has no precision: a model "
                "with zero noise lives on a "
                f"{self.components_.shape[0]}-dimensional subspace and has no density. "
                "The spread model's covariance get_covariance() + spread_scale_**2 * I "
                "is invertible."
            ) from error
        return linalg.cho_solve(factor, np.eye(len(covariance)))

    def score_samples(self, X):
        """Exact spread log-likelihood of each sample.

        E_{y ~ N(x, sigma^2 I)} log N(y; mu, C) = log N(x; mu, C) - (sigma^2 / 2) tr(C^-1),
        with C = W^T W + Psi + sigma^2 I; without spread, log N(x; mu, W^T W + Psi).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        spread_variance = 0.0 if self.spread_ is None else self.spread_.variance
        covariance = self.get_covariance()
        n_features = len(covariance)
        covariance.flat[:: n_features + 1] += spread_variance
        cholesky = linalg.cholesky(covariance, lower=True)
        whitened = linalg.solve_triangular(cholesky, (X - self.mean_).T, lower=True)
        log_det = 2.0 * np.sum(np.log(np.diag(cholesky)))
        log_likelihood = -0.5 * (
            np.sum(whitened**2, axis=0) + log_det + n_features * log(2.0 * pi)
        )
        if spread_variance:
            inverse_cholesky = linalg.solve_triangular(cholesky, np.eye(n_features), lower=True)
            log_likelihood -= 0.5 * spread_variance * np.sum(inverse_cholesky**2)
        return log_likelihood


    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]
