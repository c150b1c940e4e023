"""The spread p(y|x) = k(y - f(x)) as a torch module, fixed or learned.

The formulas are those of :mod:`skspread.spread` (they accept tensors)
and the kernel draws its own torch noise (:meth:`BaseSpread.torch_noise`).
This module only adds what training needs on top of them: the training
device and dtype of the noise, and the learnable parameters psi of the
spread (the low-rank covariance factor U, or the residual network of the
mean transformation f).
"""

import math

import torch
from torch import nn

from ..spread import GaussianSpread, lowrank_gaussian_log_prob


class SpreadModule(nn.Module):
    """Spread noise k(y - f(x)) with optional learned covariance or mean map.

    Parameters
    ----------
    kernel : BaseSpread
        The stationary kernel k (its scale is fixed); it draws the noise
        (:meth:`~skspread.spread.BaseSpread.torch_noise`).
    n_features : int
        Dimension D of the data.
    rank : int or None, default=None
        With a rank R, the Gaussian kernel's covariance becomes
        Sigma = scale^2 I + U U^T with U of shape (D, R), learned under the
        constraint ||U||_F^2 = R * scale^2 (fixed norm keeps the divergence
        bounded while the spread maximises it).
    mean_map : nn.Module or None, default=None
        Learned injective mean transformation f (e.g.
        :class:`~skspread.deep._networks.ResidualMap`); identity when None.
    """

    def __init__(self, kernel, n_features, rank=None, mean_map=None):
        super().__init__()
        if rank is not None and not isinstance(kernel, GaussianSpread):
            raise ValueError("A learned covariance needs a Gaussian spread kernel.")
        self.kernel = kernel
        self.n_features = n_features
        self.mean_map = mean_map
        # Moves and casts with the module, so that a fixed spread (no
        # parameter) knows its device and dtype.
        self.register_buffer("device_anchor", torch.empty(0), persistent=False)
        if rank is None:
            self.raw_factor = None
        else:
            self.raw_factor = nn.Parameter(torch.randn(n_features, rank))
            self.factor_norm = kernel.scale * math.sqrt(rank)

    def factor(self):
        """Low-rank factor U, rescaled to its fixed Frobenius norm."""
        return self.raw_factor * (self.factor_norm / torch.linalg.norm(self.raw_factor))

    def centre(self, X):
        """Spread mean f(x)."""
        return X if self.mean_map is None else self.mean_map(X)

    def noise(self, shape, generator):
        """Draw e ~ k of the given shape (..., D) on the module's device."""
        device, dtype = self.device_anchor.device, self.device_anchor.dtype
        noise = self.kernel.torch_noise(shape, generator, device=device, dtype=dtype)
        if self.raw_factor is not None:
            coefficients = torch.randn(
                (*shape[:-1], self.raw_factor.shape[1]),
                generator=generator,
                device=device,
                dtype=dtype,
            )
            noise = noise + coefficients @ self.factor().T
        return noise

    def log_prob(self, Y, M):
        """log k(y - f(m)) per row; ``M`` is in data space (f applied here)."""
        centre = self.centre(M)
        if self.raw_factor is None:
            return self.kernel.log_prob(Y, centre)
        residual = Y - centre
        flat = lowrank_gaussian_log_prob(
            residual.reshape(-1, self.n_features), self.kernel.scale, self.factor()
        )
        return flat.reshape(residual.shape[:-1])

    def expected_log_prob(self, Y_mean, M):
        """Closed form of E_{y ~ k(. - y_mean)} log k(y - f(m)) per row.

        ``Y_mean`` is the spread mean f(x); for the learned covariance the
        expectation of a Gaussian log-density under its own covariance is
        log N(y_mean; f(m), Sigma) - D / 2.
        """
        centre = self.centre(M)
        if self.raw_factor is None:
            return self.kernel.expected_log_prob(Y_mean, centre)
        return self.log_prob(Y_mean, M) - 0.5 * self.n_features

    def negative_entropy(self):
        """E_e log k(e): the part of the divergence that depends on k alone."""
        anchor = self.device_anchor
        zero = torch.zeros((1, self.n_features), device=anchor.device, dtype=anchor.dtype)
        if self.raw_factor is None:
            return self.kernel.expected_log_prob(zero, zero)[0]
        return lowrank_gaussian_log_prob(zero, self.kernel.scale, self.factor())[0] - (
            0.5 * self.n_features
        )


def check_torch_kernel(kernel, n_features, objective="exact"):
    """Refuse a kernel that cannot train a deep model, saying what to implement.

    A kernel trains a deep model if it draws torch noise
    (:meth:`~skspread.spread.BaseSpread.torch_noise`) and its log-density
    (and, for ``objective='low_variance'``, its expected log-density)
    computes on tensors. Both are tried on two rows of float64 noise.
    """
    name = type(kernel).__name__
    shape = (2, n_features)
    try:
        noise = kernel.torch_noise(shape, torch.Generator().manual_seed(0), dtype=torch.float64)
    except NotImplementedError as error:
        raise TypeError(str(error)) from error
    if not isinstance(noise, torch.Tensor) or tuple(noise.shape) != shape:
        raise TypeError(
            f"{name}.torch_noise(shape, generator, device, dtype) must return a torch "
            f"tensor of the given shape; for shape={shape} it returned "
            f"{type(noise).__name__} of shape {tuple(getattr(noise, 'shape', ()))}."
        )
    methods = [("log_prob", "_log_density")]
    if objective == "low_variance":
        methods.append(("expected_log_prob", "_expected_log_density"))
    for method, hook in methods:
        try:
            value = getattr(kernel, method)(noise, torch.zeros_like(noise))
            works = isinstance(value, torch.Tensor) and tuple(value.shape) == shape[:1]
        except (TypeError, AttributeError, NotImplementedError, RuntimeError) as error:
            raise TypeError(
                f"{name}.{hook} must compute on torch tensors (use the tensor's own "
                f"functions, e.g. torch.abs, or x.abs()) to train a deep model; "
                f"{method} on a tensor raised {type(error).__name__}: {error}"
            ) from error
        if not works:
            raise TypeError(
                f"{name}.{hook} must return a torch tensor of the shape of its input "
                f"to train a deep model; {method} on a tensor of shape {shape} "
                f"returned {type(value).__name__}."
            )
