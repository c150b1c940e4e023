"""The spread p(y|x) = k(y - f(x)) as a torch module, fixed or learned.

The formulas are those of :mod:`skspread.spread` (they accept tensors):
this module only adds what training needs on top of them, namely drawing
noise from a ``torch.Generator`` on the training device and holding the
learnable parameters psi of the spread (the low-rank covariance factor U,
or the residual network of the mean transformation f).
"""

import math

import torch
from torch import nn

from ..spread import GaussianSpread, LaplaceSpread, lowrank_gaussian_log_prob


def laplace_noise(shape, scale, generator, device, dtype=None):
    """Laplace(0, scale) noise by the inverse distribution function.

    With u uniform on [0, 1), the sign is that of u - 1/2 and the magnitude
    -scale log(1 - 2 |u - 1/2|) is exponential. One uniform draw per value:
    on the CPU the random draws are the cost of a spread step.
    """
    uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    centred = uniform.sub_(0.5)
    sign = torch.sign(centred)
    # u = 0 gives |u - 1/2| = 1/2 and log(0); the largest float below 1 stands in.
    magnitude = centred.abs_().mul_(2.0).clamp_(max=1.0 - torch.finfo(centred.dtype).eps)
    return magnitude.neg_().log1p_().mul_(-scale).mul_(sign)


class SpreadModule(nn.Module):
    """Spread noise k(y - f(x)) with optional learned covariance or mean map.

    Parameters
    ----------
    kernel : GaussianSpread or LaplaceSpread
        The stationary kernel k (its scale is fixed).
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

    @property
    def learnable(self):
        return self.raw_factor is not None or self.mean_map is not None

    def factor(self):
        """Low-rank factor U, rescaled to its fixed Frobenius norm."""
        return self.raw_factor * (self.factor_norm / torch.linalg.norm(self.raw_factor))

    def centre(self, X):
        """Spread mean f(x)."""
        return X if self.mean_map is None else self.mean_map(X)

    def noise(self, shape, generator):
        """Draw e ~ k of the given shape (..., D) on the module's device."""
        device, dtype = self.device_anchor.device, self.device_anchor.dtype
        if isinstance(self.kernel, LaplaceSpread):
            return laplace_noise(shape, self.kernel.scale, generator, device, dtype)
        noise = self.kernel.scale * torch.randn(
            shape, generator=generator, device=device, dtype=dtype
        )
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
