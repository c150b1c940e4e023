"""Each spread kernel draws its own noise for DeltaVAE (NumPy and torch backends)."""

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from skspread import DeltaVAE
from skspread.spread import BaseSpread, GaussianSpread, LaplaceSpread

torch = pytest.importorskip("torch")

TINY = dict(n_components=2, hidden_layer_sizes=(8,), n_epochs=1, batch_size=32, device="cpu")


def _namespace(x):
    return torch if isinstance(x, torch.Tensor) else np


class LogisticSpread(BaseSpread):
    """A user's kernel: logistic noise of scale s, variance pi^2 s^2 / 3."""

    @property
    def variance(self):
        return math.pi**2 * self.scale**2 / 3

    def noise(self, shape, random_state=None):
        return np.random.default_rng(random_state).logistic(0.0, self.scale, size=shape)

    def torch_noise(self, shape, generator, device=None, dtype=None):
        uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        uniform = uniform.clamp(min=1e-12, max=1 - 1e-7)
        return self.scale * (torch.log(uniform) - torch.log1p(-uniform))

    def _log_density(self, E):
        xp = _namespace(E)
        t = -xp.abs(E) / self.scale
        return t - 2 * xp.log1p(xp.exp(t)) - math.log(self.scale)

    def _expected_log_density(self, D):
        raise NotImplementedError

    def characteristic_function(self, w):
        x = math.pi * self.scale * np.asarray(w, dtype=float)
        return np.where(x == 0, 1.0, x / np.sinh(np.where(x == 0, 1.0, x)))


class NumpyOnlySpread(LogisticSpread):
    """Draws torch noise, but its log-density only works on NumPy arrays."""

    def _log_density(self, E):
        return -np.abs(np.asarray(E)) / self.scale - math.log(2 * self.scale)


class NoTorchSamplerSpread(LogisticSpread):
    torch_noise = BaseSpread.torch_noise


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).standard_normal((64, 3))


KERNELS = [GaussianSpread(0.7), LaplaceSpread(0.4), LogisticSpread(0.3)]


@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_deltavae_draws_the_kernels_noise(data, kernel):
    model = DeltaVAE(spread=kernel, random_state=0, **TINY).fit(data)
    n_draws = 100_000
    with torch.no_grad():
        drawn = model.module_.spread.noise((n_draws, 3), torch.Generator().manual_seed(1))
    # The model trains on standardised data: back to the data's units.
    squares = (model.data_scale_ * drawn.double().numpy().ravel()) ** 2
    # The mean of e^2 estimates the variance (the noise is centred); its
    # standard error is that of a sample mean.
    standard_error = squares.std() / math.sqrt(squares.size)
    assert abs(squares.mean() - kernel.variance) < 4 * standard_error


@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_numpy_and_torch_draws_agree_in_distribution(kernel):
    n_draws = 20_000
    numpy_draws = kernel.noise((n_draws,), random_state=0)
    torch_draws = kernel.torch_noise(
        (n_draws,), torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert isinstance(torch_draws, torch.Tensor) and torch_draws.dtype == torch.float64
    assert ks_2samp(numpy_draws, torch_draws.numpy()).pvalue > 1e-3
    assert abs(np.var(numpy_draws) / kernel.variance - 1) < 0.05


@pytest.mark.parametrize(
    "kernel, method",
    [(NoTorchSamplerSpread(1.0), "torch_noise"), (NumpyOnlySpread(1.0), "_log_density")],
    ids=["no torch sampler", "numpy-only log-density"],
)
def test_kernel_without_torch_support_is_refused_before_training(data, kernel, method):
    model = DeltaVAE(spread=kernel, **TINY)
    with pytest.raises(TypeError, match=f"{type(kernel).__name__}.*{method}|{method}.*tensor"):
        model.fit(data)
    assert not hasattr(model, "history_")


def test_base_kernel_names_the_method_to_implement():
    with pytest.raises(NotImplementedError, match=r"implement torch_noise\(self, shape"):
        NoTorchSamplerSpread(1.0).torch_noise((2,), torch.Generator())
