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
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseSpreadEstimator, atomic_fit, check_n_samples
from ._factor_analysis_solvers import (
    _check_second_moments,
    _data_moments,
    _noise_start,
    _fit_diagonal,
    _fit_isotropic,
    _orient,
    _posterior_mean_map,
    _rotate,
)
from ._moments import merge_moments
from .spread import GaussianSpread

__all__ = ["SpreadFactorAnalysis"]

# The noise-only baseline divides by the noise variances, so they are floored
# at this fraction of the mean feature variance (FactorAnalysis floors them at
# 1e-12 in absolute terms; a relative floor keeps the fit equivariant to units).
_RELATIVE_NOISE_FLOOR_WITHOUT_SPREAD = 1e-12


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
        Latent dimension K. If None, the number of features; 0 fits the
        noise alone (as FactorAnalysis allows).

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

    noise_variance_init : array-like of shape (n_features,), default=None
        Starting noise variances Psi of the spread-EM
        (``noise_variance='diagonal'`` only; a fixed noise has nothing to
        start). If None, the feature variances of the training data (all
        variance unexplained), a statistic of the data, so that the fit does
        not depend on its units; FactorAnalysis starts from ones.

    max_iter : int, default=1000
        Maximum number of spread-EM iterations (``noise_variance='diagonal'``).

    tol : float, default=1e-2
        The spread-EM stops when ``loglike_`` (the log-likelihood summed
        over the N training samples, as FactorAnalysis's ``tol``) is
        estimated to be within ``tol`` of its maximum: the last increase
        times r / (1 - r), r the ratio of the last two increases (EM
        converges geometrically), and at least the last increase. A total,
        not a mean: the log-likelihood's curvature grows with N as the
        parameters' sampling error shrinks, so a fixed total keeps the
        error left by stopping small beside the sampling error at every N.
        EM is slow along the noise variances: stopping on the last increase
        of the mean log-likelihood (1e-4, before) left them up to 10 times
        their sampling error from the maximum.

    rotation : {'varimax', 'quartimax'} or None, default=None
        Orthogonal rotation of the latent space applied to the fitted
        loadings, as in FactorAnalysis (Kaiser's varimax or quartimax
        criterion). Valid for every fit: the spread likelihood depends on W
        only through W^T W, so the rotated model has the same likelihood.

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
        Loadings W (rows), up to a rotation of the latent space (the one
        ``rotation`` picks, if any); each row is signed so that its
        largest-magnitude entry is positive.

    mean_ : ndarray of shape (n_features,)
        Per-feature empirical mean mu.

    noise_variance_ : ndarray of shape (n_features,)
        Model noise variances Psi (the spread is not included).

    spread_ : GaussianSpread or None
        The spread used, None for the noise-only baseline.

    spread_scale_ : float or None
        Standard deviation sigma of the spread used, None without spread.

    n_samples_seen_ : int
        Number of training samples the fit rests on (all blocks given to
        :meth:`partial_fit` since the last :meth:`fit`).

    n_iter_ : int
        Number of iterations run (1 for the closed form).

    loglike_ : list of float
        Spread log-likelihood of the training data, summed over the samples
        (FactorAnalysis's convention), at each iteration: its last entry is
        ``score_samples(X).sum()`` on the training data.

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

    Float32 data are fitted in float64: the mean and the scatter are
    accumulated in float64 from blocks of rows and every solver step runs in
    float64; the fitted arrays and the outputs of ``transform``,
    ``inverse_transform``, ``sample``, ``get_covariance`` and
    ``get_precision`` are float32. ``score_samples`` and ``loglike_`` stay
    float64: a log-density is a sum of D terms and a log-determinant, and
    float32 would keep only about 7 digits of it.

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
        "n_components": [Interval(Integral, 0, None, closed="left"), None],
        "spread": [StrOptions({"gaussian"}), GaussianSpread, None],
        "spread_scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "noise_variance": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"diagonal"}),
        ],
        "noise_variance_init": ["array-like", None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "rotation": [StrOptions({"varimax", "quartimax"}), None],
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
        noise_variance_init=None,
        max_iter=1000,
        tol=1e-2,
        rotation=None,
        svd_method="lapack",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.spread = spread
        self.spread_scale = spread_scale
        self.noise_variance = noise_variance
        self.noise_variance_init = noise_variance_init
        self.max_iter = max_iter
        self.tol = tol
        self.rotation = rotation
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
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self._fit_moments(_data_moments(X), dtype=X.dtype)
        return self

    @atomic_fit
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add a block of samples and refit on every sample seen so far.

        The model depends on the data only through their count, mean and
        scatter matrix, which add up across blocks (merged with the update of
        Chan, Golub and LeVeque, stable whatever the means of the blocks).
        Each call refits from the same start as :meth:`fit`, on the merged
        statistics, so that after any split of X into blocks the model is
        ``fit(X)`` up to rounding; a refit costs O(D^3) per iteration, not
        O(N). Memory is O(D^2) beyond the block. ``spread_scale='auto'``
        follows the variances of all samples seen. The fitted dtype is that
        of the first block. :meth:`fit` starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A block of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : SpreadFactorAnalysis
            The estimator fitted to all blocks so far.

        Examples
        --------
        >>> import numpy as np
        >>> from skspread import SpreadFactorAnalysis
        >>> X = np.random.default_rng(0).standard_normal((1000, 4))
        >>> model = SpreadFactorAnalysis(2, noise_variance="diagonal")
        >>> for block in np.array_split(X, 4):
        ...     model = model.partial_fit(block)
        >>> model.n_samples_seen_
        1000
        >>> whole = SpreadFactorAnalysis(2, noise_variance="diagonal").fit(X)
        >>> bool(np.allclose(model.components_, whole.components_, rtol=1e-10))
        True
        """
        first_block = not hasattr(self, "n_samples_seen_")
        X = validate_data(self, X, reset=first_block, dtype=[np.float64, np.float32])
        moments = _data_moments(X)
        if first_block:
            dtype = X.dtype
        else:
            moments = merge_moments(self._moments, moments)
            dtype = self.components_.dtype
        self._fit_moments(moments, dtype=dtype)
        return self

    def _fit_moments(self, moments, dtype):
        """Fit the model to the data's count, mean and scatter (float64), and store it.

        The fitted arrays are stored in ``dtype``, the dtype of the data; the
        moments are kept for :meth:`partial_fit`.
        """
        n_samples, mean, scatter = moments
        n_features = len(mean)
        covariance = scatter / n_samples
        _check_second_moments(covariance, dtype)
        n_components = n_features if self.n_components is None else self.n_components
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be at most n_features={n_features}: "
                "the latent space cannot be larger than the data space."
            )
        learned_noise = isinstance(self.noise_variance, str)
        if self.noise_variance_init is not None and not learned_noise:
            raise ValueError(
                "noise_variance_init is the start of a learned noise: it applies "
                "only with noise_variance='diagonal', not with the fixed "
                f"noise_variance={self.noise_variance!r}. Set noise_variance_init=None."
            )
        spread = self._resolve_spread(covariance, self.noise_variance)
        spread_variance = 0.0 if spread is None else spread.variance
        random_state = check_random_state(self.random_state)

        if learned_noise:
            noise_floor = 0.0
            if spread is None:
                noise_floor = _RELATIVE_NOISE_FLOOR_WITHOUT_SPREAD * max(
                    float(np.mean(np.diag(covariance))), np.finfo(float).tiny
                )
            components, noise_variance, loglike, n_iter, converged = _fit_diagonal(
                covariance,
                n_components,
                spread_variance,
                _noise_start(self.noise_variance_init, covariance),
                noise_floor,
                self.max_iter,
                self.tol / n_samples,
                self.svd_method,
                random_state,
                self.verbose,
            )
            if not converged:
                increase = loglike[-1] - loglike[-2] if len(loglike) > 1 else np.inf
                warnings.warn(
                    f"SpreadFactorAnalysis did not converge in max_iter={self.max_iter} "
                    f"iterations (last increase of the log-likelihood "
                    f"{n_samples * increase:.3g}, its estimated remaining increase "
                    f"above tol={self.tol:g}). Increase max_iter or tol.",
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
        if self.rotation is not None:
            components = _rotate(components, self.rotation)

        self.mean_ = mean.astype(dtype)
        self.components_ = _orient(components).astype(dtype)
        self.noise_variance_ = noise_variance.astype(dtype)
        self._store_spread(spread)
        self.n_iter_ = n_iter
        self.loglike_ = [n_samples * value for value in loglike]
        self.n_samples_seen_ = n_samples
        self._moments = moments

    def _auto_spread_std(self, covariance):
        """The base's 'auto' spread, measured on the covariance instead of the data.

        The base's rule reads only the per-feature variances; two rows
        -s and +s have exactly the variances s^2, so the rule is applied
        to them rather than written a second time.
        """
        feature_std = np.sqrt(np.maximum(np.diag(covariance), 0.0))
        return super()._auto_spread_std(np.stack([-feature_std, feature_std]))

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
            Latent means, in the dtype of ``X`` (float32 stays float32).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        # The K x D map is solved in float64, then applied in the dtype of X.
        mapping = _posterior_mean_map(
            self.components_.astype(np.float64), self.noise_variance_.astype(np.float64)
        )
        return (X - self.mean_.astype(X.dtype)) @ mapping.astype(X.dtype)

    def inverse_transform(self, X):
        """Generator output W z + mu of latent points (without noise).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Float32 when both the latent points and the fit are float32.
        """
        check_is_fitted(self)
        Z = self._validate_latent(X)
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
            In the dtype of the fit.
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        rng = check_random_state(random_state)
        n_components, n_features = self.components_.shape
        dtype = self.components_.dtype
        latent = rng.standard_normal((n_samples, n_components)).astype(dtype)
        noise = rng.standard_normal((n_samples, n_features)).astype(dtype)
        return latent @ self.components_ + self.mean_ + noise * np.sqrt(self.noise_variance_)

    def get_covariance(self):
        """Model covariance W^T W + diag(Psi) of x (without spread).

        Returns
        -------
        cov : ndarray of shape (n_features, n_features)
            In the dtype of the fit.
        """
        return self._model_covariance().astype(self.components_.dtype)

    def _model_covariance(self):
        """W^T W + diag(Psi) in float64, whatever the dtype of the fit."""
        check_is_fitted(self)
        components = self.components_.astype(np.float64)
        covariance = components.T @ components
        covariance.flat[:: len(covariance) + 1] += self.noise_variance_
        return covariance

    def get_precision(self):
        """Inverse of :meth:`get_covariance`.

        Returns
        -------
        precision : ndarray of shape (n_features, n_features)
            Solved in float64, returned in the dtype of the fit.

        Raises
        ------
        ValueError
            When the model covariance is singular (a deterministic model with
            fewer components than features has no density without spread).
        """
        covariance = self._model_covariance()
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
        precision = linalg.cho_solve(factor, np.eye(len(covariance)))
        return precision.astype(self.components_.dtype)

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
            Float64 for any input: the log-density sums D terms and a
            log-determinant, which float32 would round to about 7 digits.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        spread_variance = 0.0 if self.spread_ is None else self.spread_.variance
        covariance = self._model_covariance()
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]
