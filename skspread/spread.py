"""Spread noise: the kernels k(y - x) that the spread divergence convolves with.

A spread p(y|x) = k(y - x) is *valid* when k is positive everywhere and its
Fourier transform (characteristic function) never vanishes: then the spread
divergence D(k * p || k * q) is zero only when P = Q (Zhang et al., 2020,
section 2). Both kernels here are valid for every positive scale.

The same object serves the NumPy estimators and the torch backend: the
methods that the training losses use (:meth:`BaseSpread.log_prob`,
:meth:`BaseSpread.expected_log_prob`, :func:`lowrank_gaussian_log_prob`)
accept NumPy arrays or torch tensors and compute in the namespace of their
input, so there is one implementation of each formula. Each kernel draws
its own noise in both backends (:meth:`BaseSpread.noise` for NumPy,
:meth:`BaseSpread.torch_noise` for torch).
"""

# The array namespace dispatch keeps torch an optional dependency: torch is
# imported only inside torch_noise and when the caller passes a tensor.

import math
from abc import ABC, abstractmethod

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError

from ._array_namespace import _namespace
from ._checks import (
    check_broadcast,
    check_finite_result,
    check_operands,
    check_random_state,
    check_real_array,
    check_scale,
    check_shape,
    check_variance,
)
from ._lowrank import lowrank_gaussian_log_prob

__all__ = [
    "BaseSpread",
    "GaussianSpread",
    "LaplaceSpread",
    "check_spread",
    "lowrank_gaussian_log_prob",
]


class BaseSpread(ABC):
    """A stationary spread kernel, independent across coordinates.

    Parameters
    ----------
    scale : float
        Positive scale of the kernel (its meaning depends on the kernel),
        within [1e-300, 1e300], where its noise and the logarithm of its
        density are ordinary floats.

    See Also
    --------
    GaussianSpread, LaplaceSpread : The two kernels of the package.

    Examples
    --------
    Every kernel is a BaseSpread, which the estimators' ``spread`` parameter
    accepts (each estimator says which kernels it supports);
    :meth:`check_valid` checks that a kernel defines a valid divergence.

    >>> from skspread.spread import BaseSpread, GaussianSpread
    >>> spread = GaussianSpread(scale=0.5)
    >>> isinstance(spread, BaseSpread)
    True
    >>> spread.check_valid()
    GaussianSpread(scale=0.5)
    """

    #: Name used by the string shortcut of the estimators' ``spread`` parameter.
    name = None

    def __init__(self, scale=1.0):
        # A zero scale is no spread: the spread divergence of two
        # distributions with disjoint supports would be undefined.
        self.scale = check_scale(scale, f"The scale of a {type(self).__name__}")

    def __repr__(self):
        return f"{type(self).__name__}(scale={self.scale!r})"

    def __eq__(self, other):
        return type(self) is type(other) and self.scale == other.scale

    def __hash__(self):
        return hash((type(self).__name__, self.scale))

    @property
    @abstractmethod
    def variance(self):
        """Per-coordinate variance of the noise.

        A ValueError if it is outside the float64 range (a scale beyond
        about 1e154 or below about 1e-162).
        """

    @abstractmethod
    def noise(self, shape, random_state=None):
        """Draw noise e ~ k of the given shape.

        Parameters
        ----------
        shape : tuple of int
            Shape of the returned array.
        random_state : int, RandomState instance or None, default=None
            Seed or generator.

        Returns
        -------
        E : ndarray of the given shape
        """

    def torch_noise(self, shape, generator, device=None, dtype=None):
        """Draw noise e ~ k as a torch tensor, from a ``torch.Generator``.

        The torch twin of :meth:`noise`, which the deep estimators train
        with: the same distribution, drawn on the training device. A kernel
        written by a user implements it to be usable by
        :class:`~skspread.DeltaVAE` (with a :meth:`_log_density` that
        computes in the namespace of its input, NumPy or torch).

        Parameters
        ----------
        shape : tuple of int
            Shape of the returned tensor.
        generator : torch.Generator
            Source of the random draws (on ``device``).
        device : torch.device or None, default=None
            Device of the returned tensor (None: torch's default).
        dtype : torch.dtype or None, default=None
            Floating dtype of the returned tensor (None: torch's default).

        Returns
        -------
        E : torch.Tensor of the given shape
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no torch sampler: implement "
            "torch_noise(self, shape, generator, device=None, dtype=None), which "
            "returns a torch tensor of noise e ~ k of the given shape drawn with "
            "the torch.Generator, to train a deep model with this kernel."
        )

    def sample(self, X, random_state=None):
        """Draw one spread copy y = x + e of every row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to spread.
        random_state : int, RandomState instance or None, default=None
            Seed or generator.

        Returns
        -------
        Y : ndarray of shape (n_samples, n_features)

        Raises
        ------
        ValueError
            If ``X`` is empty, not 2-D or not finite, or ``X + e`` overflows.
        TypeError
            If ``X`` does not hold real numbers.
        """
        X = check_real_array(X, "X", ndim=2)
        return check_finite_result(
            X + self.noise(X.shape, random_state),
            "The spread sample",
            "X is too close to the largest float for noise of this scale.",
        )

    @abstractmethod
    def _log_density(self, E):
        """Elementwise log k(e), in the namespace of ``E``."""

    def log_prob(self, Y, X):
        """Log-density log p(y|x) = sum_i log k(y_i - x_i) of each row.

        Parameters
        ----------
        Y, X : arrays (NumPy or torch) of shape (..., n_features)
            Spread points and their centres; they broadcast. Both NumPy
            (or lists), or both torch tensors.

        Returns
        -------
        log_prob : array of shape (...)

        Raises
        ------
        ValueError
            If an argument is empty or not finite, the shapes do not
            broadcast, or (NumPy) the log-density overflows. Tensors are
            checked for dtype and shape only: reading their values would
            synchronise the device at every training step.
        TypeError
            If an argument does not hold real numbers, or one is a tensor and
            the other not.
        """
        Y, X = check_operands({"Y": Y, "X": X}, min_ndim=1)
        check_broadcast(Y, X, "Y", "X")
        with np.errstate(over="ignore"):
            log_prob = self._summed_log_density(Y - X)
        return check_finite_result(
            log_prob, "log_prob", "Y is too many scales away from X; use a wider spread."
        )

    def _summed_log_density(self, E):
        """sum_i log k(e_i) over the last axis of ``E``, in its namespace.

        ``E`` is a difference made for the call: a kernel may overwrite it.
        """
        return _namespace(E).sum(self._log_density(E), axis=-1)

    @abstractmethod
    def _expected_log_density(self, D):
        """Elementwise E_e log k(d + e) for e ~ k, in the namespace of ``D``."""

    def expected_log_prob(self, X, M):
        """Closed form of E_{y ~ k(. - x)} log k(y - m), per row.

        This is the decoder term of the delta-VAE's lower-variance objective
        (the paper's appendix G): the spread sample y of the reconstruction
        term of the spread ELBO (paper eq 64) is integrated out analytically.

        Parameters
        ----------
        X : array (NumPy or torch) of shape (..., n_features)
            Centres of the spread data (the spread means).
        M : array of shape (..., n_features)
            Means of the spread model.

        Returns
        -------
        expected_log_prob : array of shape (...)

        Raises
        ------
        ValueError, TypeError
            As :meth:`log_prob`.
        """
        X, M = check_operands({"X": X, "M": M}, min_ndim=1)
        check_broadcast(X, M, "X", "M")
        xp = _namespace(X)
        with np.errstate(over="ignore"):
            expected = xp.sum(self._expected_log_density(X - M), axis=-1)
        return check_finite_result(
            expected, "expected_log_prob", "X is too many scales away from M; use a wider spread."
        )

    @abstractmethod
    def characteristic_function(self, w):
        """Characteristic function E[exp(i w e)] of one coordinate of the noise.

        Parameters
        ----------
        w : array-like
            Finite frequencies (an empty, complex or non-finite ``w`` raises
            ValueError or TypeError).

        Returns
        -------
        phi : ndarray of the shape of ``w``
            Real and positive for the symmetric kernels here.
        """

    def check_valid(self, frequencies=None):
        """Check that the spread gives a valid divergence.

        A valid spread has a density that is positive everywhere and a
        characteristic function that never vanishes. The log-density is
        checked on a grid spanning many scales, the characteristic function
        at ``frequencies``. A real characteristic function equals 1 at w = 0,
        so by continuity it never vanishes only if it stays positive: a sign
        change between two grid points is a zero.

        Parameters
        ----------
        frequencies : array-like, default=None
            Frequencies at which to evaluate the characteristic function;
            by default a grid over [-10, 10] / scale (wider grids underflow:
            the Gaussian's exp(-sigma^2 w^2 / 2) is 0.0 in floating point
            beyond ``|w|`` of about 38 / sigma).

        Returns
        -------
        self : BaseSpread
            The spread itself, so that calls can be chained.

        Raises
        ------
        ValueError
            If the density or the characteristic function vanishes.
        """
        if frequencies is None:
            frequencies = np.linspace(-10.0, 10.0, 2001) / self.scale
        phi = self.characteristic_function(check_real_array(frequencies, "frequencies"))
        phi = np.abs(phi) if np.iscomplexobj(phi) else phi
        points = np.linspace(-20.0, 20.0, 401)[:, None] * self.scale
        log_density = self._log_density(points)
        if not np.all(log_density > -np.inf):
            raise ValueError(f"{self!r} has a density that vanishes.")
        if not np.all(phi > 0):
            raise ValueError(f"{self!r} has a characteristic function that vanishes.")
        return self


class GaussianSpread(BaseSpread):
    """Isotropic Gaussian spread k = N(0, scale^2 I).

    Parameters
    ----------
    scale : float, default=1.0
        Standard deviation sigma of each coordinate of the noise.

    See Also
    --------
    LaplaceSpread : Heavier-tailed spread with the same validity.

    Notes
    -----
    The characteristic function exp(-sigma^2 w^2 / 2) is positive everywhere
    (paper eq 24), so the spread is valid for every sigma > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skspread.spread import GaussianSpread
    >>> spread = GaussianSpread(scale=0.5)
    >>> Y = spread.sample(np.zeros((3, 2)), random_state=0)
    >>> Y.shape
    (3, 2)
    >>> float(spread.characteristic_function(0.0))
    1.0
    """

    name = "gaussian"

    @property
    def variance(self):
        return check_variance(self.scale * self.scale, self)

    def noise(self, shape, random_state=None):
        shape = check_shape(shape)
        return self.scale * check_random_state(random_state).standard_normal(shape)

    def torch_noise(self, shape, generator, device=None, dtype=None):
        import torch

        shape = check_shape(shape)
        # Scaled in place: one tensor of the shape (a training batch's size).
        noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return noise.mul_(self.scale)

    def _log_density(self, E):
        return -0.5 * (E / self.scale) ** 2 - math.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def _summed_log_density(self, E):
        # log N(e; 0, s^2 I) from the norm of e / s, dividing first to keep
        # tiny and huge scales in range as the per-coordinate terms do. A
        # tensor E (the difference that log_prob has just made, the size of
        # DeltaVAE's training batch) of floats is divided in place: no
        # temporary of its size, where the sum of per-coordinate terms makes
        # five.
        if _namespace(E) is np:
            distance = np.linalg.norm(E / self.scale, axis=-1)
        else:
            scaled = E.div_(self.scale) if E.is_floating_point() else E / self.scale
            distance = _namespace(E).linalg.vector_norm(scaled, dim=-1)
        constant = E.shape[-1] * (math.log(self.scale) + 0.5 * math.log(2 * math.pi))
        return -0.5 * distance**2 - constant

    def _expected_log_density(self, D):
        # E log N(d + e; 0, s^2) = log N(d; 0, s^2) - 1/2.
        return self._log_density(D) - 0.5

    def characteristic_function(self, w):
        w = check_real_array(w, "w")
        with np.errstate(over="ignore"):  # beyond the float range phi is 0.0
            return np.exp(-0.5 * np.square(self.scale * w))


class LaplaceSpread(BaseSpread):
    """Laplace spread, independent per coordinate: ``k(e) = exp(-|e| / b) / (2 b)``.

    Parameters
    ----------
    scale : float, default=1.0
        Scale b of each coordinate of the noise (variance 2 b^2).

    See Also
    --------
    GaussianSpread : Light-tailed spread.

    Notes
    -----
    The characteristic function 1 / (1 + b^2 w^2) is positive everywhere
    (paper eq 25), so the spread is valid for every b > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skspread.spread import LaplaceSpread
    >>> spread = LaplaceSpread(scale=1.0)
    >>> spread.variance
    2.0
    >>> round(float(spread.log_prob(np.zeros((1, 1)), np.zeros((1, 1)))[0]), 4)
    -0.6931
    """

    name = "laplace"

    @property
    def variance(self):
        return check_variance(2.0 * self.scale * self.scale, self)

    def noise(self, shape, random_state=None):
        shape = check_shape(shape)
        return check_random_state(random_state).laplace(0.0, self.scale, size=shape)

    def torch_noise(self, shape, generator, device=None, dtype=None):
        # By the inverse distribution function: with u uniform on [0, 1), the
        # sign is that of u - 1/2 and the magnitude -b log(1 - 2 |u - 1/2|) is
        # exponential. One uniform draw per value: on the CPU the random
        # draws are the cost of a spread step.
        import torch

        shape = check_shape(shape)
        uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        centred = uniform.sub_(0.5)
        sign = torch.sign(centred)
        # u = 0 gives |u - 1/2| = 1/2 and log(0); the largest float below 1 stands in.
        magnitude = centred.abs_().mul_(2.0).clamp_(max=1.0 - torch.finfo(centred.dtype).eps)
        return magnitude.neg_().log1p_().mul_(-self.scale).mul_(sign)

    def _log_density(self, E):
        xp = _namespace(E)
        return -xp.abs(E) / self.scale - math.log(2 * self.scale)

    def _expected_log_density(self, D):
        # E_e |d + e| = |d| + b exp(-|d| / b) for e ~ Laplace(0, b).
        xp = _namespace(D)
        b = self.scale
        absolute = xp.abs(D)
        return -math.log(2 * b) - (absolute + b * xp.exp(-absolute / b)) / b

    def characteristic_function(self, w):
        w = check_real_array(w, "w")
        with np.errstate(over="ignore"):  # beyond the float range phi is 0.0
            return 1.0 / (1.0 + np.square(self.scale * w))


_SPREADS = {cls.name: cls for cls in (GaussianSpread, LaplaceSpread)}


def check_spread(spread, scale=1.0, allow_none=True):
    """Resolve the ``spread`` parameter of an estimator to a spread object.

    Parameters
    ----------
    spread : {'gaussian', 'laplace'}, BaseSpread instance or None
        A name, an object (returned as it is, its own scale wins) or None
        (no spread: the noise-only baseline).
    scale : float, default=1.0
        Scale used when ``spread`` is a name, within [1e-300, 1e300].
    allow_none : bool, default=True
        Whether None is accepted.

    Returns
    -------
    spread : BaseSpread or None

    Raises
    ------
    ValueError
        If ``spread`` is an unknown name or type, None where it is not
        allowed, or ``scale`` is not a float within [1e-300, 1e300].

    Examples
    --------
    >>> from skspread.spread import check_spread
    >>> check_spread("laplace", 0.3)
    LaplaceSpread(scale=0.3)
    """
    if not isinstance(allow_none, (bool, np.bool_)):
        raise InvalidParameterError(f"allow_none must be a bool, got {allow_none!r}.")
    if spread is None:
        if not allow_none:
            raise ValueError("A spread is required here; got spread=None.")
        return None
    if isinstance(spread, BaseSpread):
        return spread
    if isinstance(spread, str) and spread in _SPREADS:
        return _SPREADS[spread](check_scale(scale, "scale"))
    raise ValueError(
        f"spread must be one of {sorted(_SPREADS)}, a BaseSpread instance or None; "
        f"got {spread!r}."
    )
