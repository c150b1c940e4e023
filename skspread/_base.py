"""The base shared by the spread estimators.

One place resolves the ``spread`` and ``spread_scale`` parameters, refuses a
model without likelihood, checks latent inputs and sample counts, and keeps
the previous fit whole when a refit fails. The estimators only say which
kernels they support and how 'auto' measures the data.
"""

import functools
import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array

from .spread import BaseSpread, check_spread

__all__ = ["BaseSpreadEstimator", "atomic_fit", "check_n_samples"]

# Fraction of the root-mean-square feature standard deviation that 'auto'
# gives the spread unless an estimator has its own rule.
_AUTO_SPREAD_FRACTION = 0.5


def check_n_samples(n_samples):
    """Return ``n_samples`` as an int, or refuse it clearly.

    Parameters
    ----------
    n_samples : int
        Number of samples to draw; a positive integer (NumPy integers too).

    Returns
    -------
    n_samples : int

    Raises
    ------
    TypeError
        If ``n_samples`` is not an integer (a float, a string, a bool).
    ValueError
        If ``n_samples`` is smaller than 1.
    """
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, Integral):
        raise TypeError(
            f"n_samples must be a positive integer, got {n_samples!r} of type "
            f"{type(n_samples).__name__}."
        )
    if n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    return int(n_samples)


def _is_zero_scalar(value):
    """True for a Python or NumPy real scalar equal to zero (not a string)."""
    if isinstance(value, (str, bool, np.bool_)):
        return False
    return isinstance(value, (Real, np.number)) and np.ndim(value) == 0 and value == 0


def atomic_fit(fit_method):
    """Keep the previous fitted state whole when a (re)fit raises.

    Put it above ``_fit_context``. The estimator's ``__dict__`` is copied
    before the fit and restored if anything is raised, KeyboardInterrupt
    included, so that ``mean_`` and ``components_`` of an old fit never end up
    beside those of a half-finished one. The copy is shallow: a fit assigns
    new arrays and never writes into fitted ones.
    """

    @functools.wraps(fit_method)
    def fit_atomically(estimator, *args, **kwargs):
        saved = dict(estimator.__dict__)
        try:
            return fit_method(estimator, *args, **kwargs)
        except BaseException:
            estimator.__dict__.clear()
            estimator.__dict__.update(saved)
            raise

    return fit_atomically


class BaseSpreadEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Behaviour shared by SpreadFactorAnalysis, SpreadICA and DeltaVAE.

    Subclasses set ``_spread_kernels``, the kernel classes they can fit, and
    may override :meth:`_auto_spread_std`, the spread 'auto' picks. Fitted
    estimators store ``spread_`` (the kernel, None for the noise-only
    baseline), ``spread_scale_`` (its scale, None for the baseline) and
    ``noise_variance_``.
    """

    #: Kernel classes the estimator supports (instances of subclasses too).
    _spread_kernels = (BaseSpread,)

    def _auto_spread_std(self, X):
        """Standard deviation of the spread that ``spread_scale='auto'`` gives.

        Half the root-mean-square standard deviation of the features: a
        multiple of a statistic of the data, so that a fit on ``c * X`` is the
        fit on ``X`` scaled (1 for constant data, which has no scale).
        """
        rms_std = math.sqrt(float(np.mean(np.var(X, axis=0))))
        return _AUTO_SPREAD_FRACTION * rms_std if rms_std > 0 else 1.0

    def _resolve_spread(self, X, noise_variance):
        """The spread kernel of this fit, or None for the noise-only baseline.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated training data ('auto' measures it).
        noise_variance : float, ndarray or str
            The model noise the fit uses; a learned noise (a string such as
            'diagonal') counts as positive.

        Returns
        -------
        spread : BaseSpread or None
        """
        if self.spread is None:
            if _is_zero_scalar(noise_variance):
                raise ValueError(
                    "spread=None with noise_variance=0 has no likelihood: a "
                    "deterministic model has no density off its manifold, so "
                    "maximum likelihood is undefined (paper section 1.1). Use a "
                    "spread (e.g. spread='gaussian') for the consistent spread "
                    "estimator, or a positive noise_variance for the noise-only "
                    "baseline."
                )
            return None
        if isinstance(self.spread, BaseSpread):
            spread = self.spread
        else:
            kernel_class = type(check_spread(self.spread, 1.0))
            if isinstance(self.spread_scale, str) and self.spread_scale == "auto":
                unit_std = math.sqrt(kernel_class(1.0).variance)
                spread = kernel_class(self._auto_spread_std(X) / unit_std)
            else:
                spread = kernel_class(float(self.spread_scale))
        if not isinstance(spread, self._spread_kernels):
            supported = ", ".join(kernel.__name__ for kernel in self._spread_kernels)
            raise ValueError(
                f"{type(self).__name__} supports spread kernels of type {supported}; "
                f"got {spread!r}."
            )
        return spread

    def _store_spread(self, spread):
        """Set ``spread_`` and ``spread_scale_`` (both None without spread)."""
        self.spread_ = spread
        self.spread_scale_ = None if spread is None else spread.scale

    def _set_evaluation_seed(self, random_state):
        """Fix the seed of the common random numbers of transform and score_samples."""
        self._evaluation_seed = int(random_state.randint(np.iinfo(np.int32).max))

    def _validate_latent(self, Z, dtype=(np.float64, np.float32)):
        """Check latent points for ``inverse_transform``: one column per component."""
        Z = check_array(Z, dtype=list(dtype) if isinstance(dtype, tuple) else dtype)
        n_components = self._n_features_out
        if Z.shape[1] != n_components:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but {type(self).__name__}.inverse_transform "
                f"expects n_components={n_components} latent coordinates."
            )
        return Z

    def score(self, X, y=None):
        """Mean spread log-likelihood (or its bound) of the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; higher is better, as
            :class:`~sklearn.model_selection.GridSearchCV` expects.
        """
        return float(np.mean(self.score_samples(X)))

