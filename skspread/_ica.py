"""Spread-EM for deterministic and noisy linear ICA (Zhang et al., 2020, section 4.1)."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseSpreadEstimator, atomic_fit, check_n_samples
from ._ica_convergence import _rank_deficiency_as_value_error, _warn_unless_converged
from ._ica_draws import _DrawsRun, _first_draws, _fit_with_draws, _fixed_draws
from ._ica_noise_free import _likelier_run, _noise_free_run, _principal_subspace
from ._ica_online import _block_starts, _online_update, _OnlineState
from ._ica_start import _auto_spread_scale, _check_identifiable, _fit_start, _spread_copies
from ._ica_start import _start_noise_variance
from ._ica_sampling import _draw_sets, _posterior_mean, _spread_log_likelihood
from ._source_density import sample_prior
from .spread import GaussianSpread

__all__ = ["SpreadICA"]

_ICA_SOURCES = ("adaptive", "laplace", "logistic")


class SpreadICA(BaseSpreadEstimator):
    """Linear ICA by spread maximum likelihood, for deterministic and noisy mixtures.

    The model is x = A z + mu + e with independent unit-variance non-Gaussian
    sources z (K of them), a mixing matrix A of shape (D, K), D >= K, and
    observation noise e ~ N(0, gamma^2 I); gamma = 0 is deterministic
    (implicit) ICA, for which maximum likelihood and its EM algorithm are
    stuck: the M-step returns its input (paper eq 43-45). SpreadICA instead
    maximises the spread log-likelihood E_{y ~ N(x, sigma^2 I)} log p~(y) of
    the model convolved with Gaussian spread noise, by an EM algorithm whose
    E-step is self-normalised importance sampling from the Gaussian factor of
    the posterior (paper eq 50-56), or exact (Notes). With ``spread=None`` and
    ``noise_variance > 0`` it is the standard noise-only EM, kept as the
    baseline the paper compares with.

    Parameters
    ----------
    n_components : int, default=None
        Number of sources K; None means K = n_features.
    source : {'adaptive', 'laplace', 'logistic'}, default='adaptive'
        Density of the sources. 'adaptive': each source's density, a
        mixture of three unit-variance Gaussians, is learned by the same EM
        (independent factor analysis): sub- and super-Gaussian, skewed and
        bimodal sources. 'laplace' (the paper's) and 'logistic' are fixed
        super-Gaussian priors, the wrong model for sub-Gaussian sources.
    spread : {'gaussian'}, GaussianSpread or None, default='gaussian'
        Spread noise. Only Gaussian spread keeps y | z Gaussian, with
        variance tau^2 = gamma^2 + sigma^2, which the importance sampler
        needs. None is the noise-only baseline (needs a positive or learned
        ``noise_variance``; a learned one is kept above 1e-6 of the mean
        feature variance).
    spread_scale : float or 'auto', default='auto'
        Standard deviation sigma of the spread. 'auto' depends on the start.
        From ``init='fastica'``, a consistent start that EM only refines,
        sigma^2 = 0.02 (lambda_K - gamma^2), with lambda_K the K-th
        eigenvalue of the data covariance: the spread adds at most 2% of
        the weakest source's variance to its posterior, so it costs little
        statistical efficiency. From any other start EM must travel, and
        'auto' is the paper's rule sigma = 2.5 sqrt(mean of the
        entries of A A^T), the data covariance standing in for A A^T,
        capped so that sigma^2 + 2 gamma^2 <= lambda_K: then the importance
        proposal is nowhere wider than the source prior (see Notes). Both
        are at least 0.001 times the RMS feature standard deviation, so a
        fit on c X is the fit on X in other units.
        Ignored when ``spread`` is an object (its own scale is used) or None.
    noise_variance : float, 'isotropic' or 'diagonal', default='isotropic'
        Observation noise variance gamma^2 of the model. A float is kept
        fixed (0 is deterministic ICA). 'isotropic' learns one gamma^2 and
        'diagonal' one per feature, by the same EM on the spread data: the
        M-step's total variance tau^2 = E|y - A z|^2 / n_samples (per
        feature for 'diagonal') gives gamma^2 = max(tau^2 - sigma^2, 0), so
        the spread keeps EM moving when the learned noise is zero. It starts
        from the variance outside the principal n_components directions
        (half the smallest eigenvalue of the data covariance when
        n_components = n_features). The default serves data whose noise
        level is unknown: on noise-free data it is zero (the noise-free
        path, see Notes) or ends near zero.
    n_spread_samples : int, default=1
        Spread copies S_y of each data point, drawn once per fit.
    n_importance_samples : int or 'auto', default='auto'
        Importance samples S_z per spread copy, per group of >= 256 rows (see
        Notes). An int is drawn once per fit. With learned densities
        ('adaptive') of at most 4 sources and a learned noise, 'auto' takes
        the exact E-step (no draws, see Notes). Otherwise it starts with 256
        (128 from 16384 spread copies: 64 groups of rows, 8192 draws in all);
        after 20 EM evaluations (or at convergence) the M-step's A with these
        and with as many fresh draws gives its Monte Carlo error, and its
        spread over the row groups its sampling error (both on at most 8
        groups); where the first is above a quarter of the second, or the
        mean effective sample size below 64, the draws grow to the power of
        two that passes both (the fresh ones joining), at most 1024, and EM
        resumes. ``partial_fit`` takes 1024.
    init : {'fastica', 'pca', 'random'} or array-like of shape \
            (n_features, n_components), default='fastica'
        Starting mixing matrix. 'fastica' is scikit-learn's FastICA with
        unit-variance sources, a consistent start for deterministic ICA,
        shrunk in the principal subspace to the signal variances (the
        eigenvalues minus gamma^2); 'pca' is the principal subspace scaled
        by the signal variances.
    max_iter : int, default=500
        Maximum number of EM map evaluations (the Monte Carlo checks of
        'auto' aside), or of quasi-Newton iterations on the noise-free path.
    tol : float, default=3e-3
        Stop when the estimated distance of the parameters to the EM fixed
        point, ``|step| / (1 - rate)`` with the rate at which EM steps shrink,
        is below ``tol`` relative to their norm; on the noise-free path, when
        a quasi-Newton step would add less than ``tol`` nats to the
        log-likelihood summed over the rows. A small step alone is not
        convergence: near the deterministic limit EM contracts at a rate
        near 1 (paper eq 43-45): small steps that keep their direction have
        converged if below a quarter of the EM map's sampling error along
        them, else (at a rate within 0.001 of 1) warn as frozen.
    batch_size : int, default=256
        Rows per block of the sampled E-step; memory is O(batch_size *
        n_importance_samples). The exact E-step takes its own blocks.
    random_state : int, RandomState instance or None, default=None
        Seed of the start, of the spread copies and importance draws, and
        of the fixed draws that make ``transform`` and ``score_samples``
        deterministic.
    verbose : int, default=0
        Print one line per EM iteration when positive.

    Attributes
    ----------
    mixing_ : ndarray of shape (n_features, n_components)
        Estimated mixing matrix A (sources of unit variance).
    components_ : ndarray of shape (n_components, n_features)
        Unmixing matrix, the pseudo-inverse of ``mixing_``.
    mean_ : ndarray of shape (n_features,)
        Mean mu of the training data.
    noise_variance_ : float or ndarray of shape (n_features,)
        Model observation noise gamma^2: the given one, or the learned one
        (an array for 'diagonal').
    spread_ : GaussianSpread or None
        The spread used.
    spread_scale_ : float or None
        Standard deviation sigma of the spread (None without spread).
    n_iter_ : int
        Number of EM map evaluations (summed over the blocks of
        :meth:`partial_fit`), or of quasi-Newton iterations on the
        noise-free path.
    source_density_ : MixtureSourceDensity or None
        The learned densities ('adaptive'), with ``log_density`` and ``sample``.
    n_samples_seen_ : int
        Number of training samples: those of ``fit``, or of all blocks
        given to :meth:`partial_fit` since it started.
    n_importance_samples_ : int
        Importance draws per row of the last E-step, also those of
        ``transform`` and ``score_samples`` (on the noise-free path, which
        has no E-step, 'auto''s first: 256 or 128, or 0); 0 where they are exact.
    effective_sample_size_ : float
        Mean effective sample size 1 / sum_s w_s^2 of the importance weights
        in the last E-step (between 1 and ``n_importance_samples_``;
        ``n_importance_samples_`` on the noise-free path, inf where exact); a
        ``ConvergenceWarning`` is raised when it falls below
        ``min(10, n_importance_samples_ / 10)``.
    loglike_ : list of float
        Mean spread log-likelihood of the training spread copies at each
        EM evaluation (of each block's, one block after the other, for
        :meth:`partial_fit`) (the importance draws are fixed, so these values
        are comparable between iterations); on the noise-free path, the mean
        log-likelihood of the training rows under the noise-free model (a
        density on the data's n_components-dimensional subspace) at each
        iteration.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.FastICA : Fixed-point ICA, used as the start.
    SpreadFactorAnalysis : The Gaussian-source counterpart, in closed form.

    Notes
    -----
    With learned densities and noise and a spread (the defaults), the model is
    first fitted noise-free, by its exact likelihood on the data's principal
    subspace, p(x) = abs(det B) prod_k p_k(b_k^T (x - mu)) with B = pinv(A):
    quasi-Newton steps on the whitened unmixing alternate with the densities'
    EM, with neither spread nor sampling. That fit is the result, with zero
    noise (the spread kept for ``score_samples``), where the data leave no room
    for noise: with more features than sources, a mean variance outside the
    subspace below 1e-6 of the weakest; square, a score test for noise at zero
    that neither finds it (5% level) nor leaves room (95% bound) for a noise
    variance of 5% of the weakest principal one. Otherwise spread-EM (below;
    paper section 1.1 on why the spread) starts from it (with init='fastica'
    and 'isotropic' noise), as other settings start from ``init``; where the
    test neither found noise nor ruled it out, the noise-free fit is kept
    (``n_iter_`` and ``loglike_`` its own) unless spread-EM's model has a
    log-likelihood on the data higher by over a nat per noise parameter.

    Gaussian spread gives p(y | z) = N(y | A z + mu, tau^2 I), and
    N(y | A z + mu, tau^2 I) = c(y) N(z | m(y), V) with
    m(y) = (A^T A)^-1 A^T (y - mu), V = tau^2 (A^T A)^-1. The E-step is
    self-normalised importance sampling of p(z | y), proportional to
    N(z | m(y), V) prod_k p(z_k); the M-step is A <- C S^-1 with
    C = sum y E[z|y]^T and S = sum E[z z^T|y] (paper eq 43, 50-51); a learned
    noise takes ``tau^2 <- (sum |y|^2 - tr(A C^T)) / (N D)`` from the same
    moments (per feature for 'diagonal'). Fixed spread copies and draws
    (common random numbers; 'auto' changes the draws only between SQUAREM
    runs) make the EM map smooth and deterministic, so SQUAREM accelerates it;
    it costs O(n_samples n_spread_samples n_importance_samples K) in float32
    blocks. A learned density is a mixture of J = 3
    Gaussians, so the posterior is a mixture over the J^K combinations of the
    sources' components, in closed form (independent factor analysis, Attias
    1999): for K <= 4 and a learned noise 'auto' computes it exactly, in
    O(n_samples J^K K^2), the densities taking one EM step on their
    components' posterior moments.

    Where V is wide next to the unit-variance prior (a small singular value of
    A, noise not small), half of the draws come from the Gaussian-source
    posterior N((I - W) m(y), W), W = (A^T A / tau^2 + I)^-1, each weighted
    against the two-component mixture (defensive importance sampling [3]); each
    group of at least 256 rows (64 groups at most) has its own draws, so that
    their Monte Carlo error averages out over N (user guide). The spread is
    consistent at any sigma, at a cost in efficiency growing with sigma: from
    FastICA's consistent start 'auto' takes a small refining spread, from a
    poor one the paper's (eq 43-45); a collapsing ``effective_sample_size_``
    warns to reduce ``spread_scale``.

    ``transform`` is E[z | x]: ``components_ @ (x - mu)`` when gamma = 0, else
    as the E-step (exact, or sampled); ``score_samples`` draws each row's spread
    copies from its values and a seed fixed at fit (their error averages out).

    References
    ----------
    .. [1] M. Zhang, P. Hayes, T. Bird, R. Habib and D. Barber, "Spread
       Divergence", ICML 2020, section 4.1.
    .. [2] R. Varadhan and C. Roland, "Simple and globally convergent
       methods for accelerating the convergence of any EM algorithm",
       Scandinavian Journal of Statistics 35, 2008.
    .. [3] T. Hesterberg, "Weighted average importance sampling and
       defensive mixture distributions", Technometrics 37, 1995.

    Examples
    --------
    >>> from skspread import SpreadICA
    >>> from skspread.datasets import make_ica
    >>> from skspread.metrics import mixing_error
    >>> data = make_ica(2000, n_features=4, n_components=2, random_state=0)
    >>> ica = SpreadICA(n_components=2, n_importance_samples=200, random_state=0)
    >>> ica.fit(data.data).mixing_.shape
    (4, 2)
    >>> mixing_error(ica.mixing_, data.mixing) < 0.1
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "source": [StrOptions(set(_ICA_SOURCES))],
        "spread": [StrOptions({"gaussian"}), GaussianSpread, None],
        "spread_scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "noise_variance": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"isotropic", "diagonal"}),
        ],
        "n_spread_samples": [Interval(Integral, 1, None, closed="left")],
        "n_importance_samples": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "init": [StrOptions({"fastica", "pca", "random"}), "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        source="adaptive",
        spread="gaussian",
        spread_scale="auto",
        noise_variance="isotropic",
        n_spread_samples=1,
        n_importance_samples="auto",
        init="fastica",
        max_iter=500,
        tol=3e-3,
        batch_size=256,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.source = source
        self.spread = spread
        self.spread_scale = spread_scale
        self.noise_variance = noise_variance
        self.n_spread_samples = n_spread_samples
        self.n_importance_samples = n_importance_samples
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    _spread_kernels = (GaussianSpread,)

    def _auto_spread_std(self, X):
        """The spread 'auto' picks: small from FastICA's start, the paper's otherwise."""
        n_components = self.n_components or X.shape[1]
        start_noise = _start_noise_variance(self.noise_variance, X, n_components)
        return _auto_spread_scale(X, n_components, start_noise, self.init)

    @atomic_fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the mixing matrix by spread-EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : SpreadICA
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        # float32 data is fitted in float64 and the fitted arrays stored in float32.
        dtype = X.dtype
        X = X.astype(np.float64, copy=False)
        start, staged, refined, candidate = self._fit_noise_free(X)
        if staged is None:
            start = self._start(X, mixing=refined)
            Y = _spread_copies(start.X_centred, start.spread, self.n_spread_samples, start.rng)
            settings = (self.max_iter, self.tol, self.batch_size, self.verbose)
            with _rank_deficiency_as_value_error():
                staged = _fit_with_draws(Y, start, self.n_importance_samples, self.source, settings)
            staged = _likelier_run(staged, candidate, start, self.batch_size, self.verbose)
        run, self.n_importance_samples_ = staged.result, staged.n_draws
        _warn_unless_converged(run, start.spread, self, start.X_centred)
        self._store_model(start.mean, run.mixing, run.total_variance, start, dtype, run.prior)
        self.effective_sample_size_ = run.effective_sample_size
        self.n_iter_ = len(run.loglike)
        self.loglike_ = run.loglike
        self.n_samples_seen_ = len(X)
        # A fit starts afresh: partial_fit after it starts a new stream.
        self.__dict__.pop("_online", None)
        self._set_evaluation_seed(start.rng)
        return self

    @atomic_fit
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the model with a block of samples by online EM.

        Online EM (Cappe and Moulines, 2009): the E-step's sufficient
        statistics per row, s = (C, S, sum y^2) / N (paper eq 50, 51), are a
        running stochastic approximation s_t = (1 - rho_t) s_{t-1} +
        rho_t s(block_t; theta_t), with the step rho_t = n_t / (n_1 + ... +
        n_t) for a block of n_t rows (1 / t for equal blocks), and the model
        is the M-step on s_t (A = C S^-1, the learned noise, and with
        ``source='adaptive'`` the densities' update on the averaged
        histogram of the weighted posterior draws). The
        block's statistics are taken at theta_t, the EM fixed point of the
        block alone (the EM of :meth:`fit`, ``max_iter`` and ``tol``), from
        the model so far or from a fit's start on the block (sources matched
        to the model's), whichever is more likely on the block: near the
        deterministic limit EM contracts slowly (paper eq 43-45), and
        statistics taken at the model so far would mostly restate it.

        The first call starts as :meth:`fit` does, on its block (the mean,
        the 'auto' spread, the initial mixing and noise); the spread, the
        learned noise's floor and the seed of the fixed draws of
        ``transform`` and ``score_samples`` stay those of the first block.
        Each block gets fresh spread copies and importance draws from the
        stream of ``random_state``, so that their Monte Carlo error averages
        over the blocks. ``mean_`` is the mean of all samples seen. A later
        block of under 20 rows per source takes one E-step at the model, with
        a warning; the dtype, n_components, source, noise_variance and spread
        (scale) stay the first block's (a change raises). fit starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A block of training data (at least 2 rows, and more than
            n_components in the first block).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : SpreadICA
            The estimator updated with the block.

        Examples
        --------
        >>> import numpy as np
        >>> from skspread import SpreadICA
        >>> from skspread.datasets import make_ica
        >>> from skspread.metrics import mixing_error
        >>> data = make_ica(4000, n_features=4, n_components=2, random_state=0)
        >>> ica = SpreadICA(n_components=2, n_importance_samples=200, random_state=0)
        >>> for block in np.array_split(data.data, 4):
        ...     ica = ica.partial_fit(block)
        >>> ica.n_samples_seen_
        4000
        >>> mixing_error(ica.mixing_, data.mixing) < 0.1
        True
        """
        first_block = not hasattr(self, "_online")
        X = validate_data(
            self, X, reset=first_block, dtype=[np.float64, np.float32], ensure_min_samples=2
        )
        if first_block:
            dtype = X.dtype
            start = self._start(X.astype(np.float64, copy=False))
            self._set_evaluation_seed(start.rng)
            state = _OnlineState.first(start, len(X), self)
        else:
            dtype = self.mixing_.dtype
            state = self._online.with_mean_of(X.astype(np.float64, copy=False), self)
        X_centred = X.astype(np.float64, copy=False) - state.mean
        rng = state.random_state()
        Y = _spread_copies(X_centred, state.start.spread, self.n_spread_samples, rng)
        self.n_importance_samples_ = _fixed_draws(self.n_importance_samples)
        draw_sets = _draw_sets(len(Y), self.n_importance_samples_, state.start.n_components, rng)
        starts = _block_starts(state, first_block, X_centred, self.init, self.noise_variance, rng)
        settings = (self.max_iter, self.tol, self.batch_size, self.verbose)
        with _rank_deficiency_as_value_error():
            state, result = _online_update(state, Y, len(X), starts, draw_sets, settings, rng)
        _warn_unless_converged(result, state.start.spread, self, X_centred)
        model = (state.mean, state.mixing, state.total_variance, state.start, dtype, state.prior)
        self._store_model(*model)
        self.effective_sample_size_ = result.effective_sample_size
        self.n_iter_ = (0 if first_block else self.n_iter_) + len(result.loglike)
        self.loglike_ = ([] if first_block else self.loglike_) + result.loglike
        self.n_samples_seen_ = state.n_samples_seen
        self._online = state
        return self

    def _fit_noise_free(self, X):
        """The noise-free path (Notes): start, run (``_DrawsRun``), EM's start, candidate, or Nones."""
        learned = isinstance(self.noise_variance, str)
        subspace = None
        if self.source == "adaptive" and self.spread is not None and learned:
            subspace = _principal_subspace(X - X.mean(axis=0), self.n_components or X.shape[1])
        if subspace is None:
            return None, None, None, None
        start = self._start(X, noise_free=True)
        draws = (self.n_importance_samples, self.source, start.n_components, start.noise)
        n_draws = _first_draws(*draws, len(X) * self.n_spread_samples)
        settings = (self.max_iter, self.tol, self.verbose)
        run, refined, candidate = _noise_free_run(start, subspace, n_draws, settings)
        # A diagonal noise trades with A's rows: from there its EM ended further off.
        from_fastica = isinstance(self.init, str) and self.init == "fastica"
        keep = from_fastica and self.noise_variance == "isotropic"
        staged = None if run is None else _DrawsRun(run, n_draws)
        candidate = None if candidate is None else _DrawsRun(candidate, n_draws)
        return start, staged, refined if keep else None, candidate

    def _start(self, X, noise_free=False, mixing=None):
        """The start of a fit on ``X`` (float64): checks, mean, spread, mixing, noise, seed.

        ``noise_free``: no noise in the start mixing; ``mixing``: see ``_fit_start``.
        """
        n_samples, n_features = X.shape
        n_components = n_features if self.n_components is None else self.n_components
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be <= n_features={n_features}: "
                "SpreadICA needs at least as many observed dimensions as sources."
            )
        # Degenerate data are named before the 'auto' spread looks for their scale.
        _check_identifiable(X - X.mean(axis=0), n_components)
        spread = self._resolve_spread(X, self.noise_variance)
        noise_variance = 0.0 if noise_free else self.noise_variance
        start = _fit_start(
            X, n_components, spread, self.init, noise_variance, self.random_state, mixing
        )
        return start._replace(noise=self.noise_variance) if noise_free else start

    def _store_model(self, mean, mixing, total_variance, start, dtype, prior=None):
        """Set the fitted model's attributes, its arrays in ``dtype`` (``prior``: fit's)."""
        self._prior = self.source if prior is None else prior  # a name or a learned density
        self.source_density_ = None if isinstance(self._prior, str) else self._prior
        self.mean_ = mean.astype(dtype, copy=False)
        self.mixing_ = mixing.astype(dtype, copy=False)
        self.components_ = np.linalg.pinv(mixing).astype(dtype, copy=False)
        if start.noise == "fixed":
            self.noise_variance_ = float(self.noise_variance)
        elif start.noise == "isotropic":
            self.noise_variance_ = max(float(total_variance) - start.spread_variance, 0.0)
        else:
            noise_variance = np.maximum(total_variance - start.spread_variance, 0.0)
            self.noise_variance_ = noise_variance.astype(dtype)
        self._store_spread(start.spread)

    def transform(self, X):
        """Posterior mean of the sources, E[z | x], under the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        sources : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X_centred, dtype = self._centred(X)
        sources = _posterior_mean(X_centred, self)
        return sources.astype(dtype, copy=False)

    def inverse_transform(self, X):
        """Map sources back to data space: x = A z + mu.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Sources.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        Z = self._validate_latent(X)
        return (Z @ self.mixing_.T + self.mean_).astype(Z.dtype, copy=False)

    def sample(self, n_samples=1, random_state=None):
        """Draw data from the fitted model x = A z + mu + e.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the sources and noise.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        rng = check_random_state(random_state)
        n_features, n_components = self.mixing_.shape
        X = sample_prior(self._prior, n_samples, n_components, rng) @ self.mixing_.T.astype(
            np.float64
        )
        X += np.sqrt(self.noise_variance_) * rng.standard_normal(X.shape)
        return (X + self.mean_).astype(self.mixing_.dtype, copy=False)

    def score_samples(self, X):
        """Spread log-likelihood of each sample, by importance sampling or exactly.

        The mean of log p~(y) over ``n_spread_samples`` spread copies y = x +
        sigma e, each estimated with ``n_importance_samples_`` draws (exact
        where that is 0). Each row has its own copies, a function of its values
        and of a seed fixed at fit, so the result is deterministic, a row's
        value does not depend on the other rows, and the copies' error averages
        out in the mean over rows (``score``). Without spread it is log p(x)
        under the noisy model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X_centred, dtype = self._centred(X)
        log_likelihood = _spread_log_likelihood(X_centred, self)
        return log_likelihood.astype(dtype, copy=False)

    def _centred(self, X):
        """Validated X minus ``mean_``, in float64, and the dtype of the outputs."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X.astype(np.float64, copy=False) - self.mean_, X.dtype

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
