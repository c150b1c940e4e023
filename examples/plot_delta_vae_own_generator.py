"""
=====================================================
The delta-VAE with your own convolutional generator
=====================================================

:class:`~skspread.DeltaVAE` trains any ``torch.nn.Module`` as its generator
(or encoder). Give the class, and its constructor's arguments as
``generator__*`` parameters (the way skorch routes ``module__*``): the
estimator builds a fresh network at every fit, so clones and refits never
share weights. The contract is checked at fit: the generator maps latent
codes of shape (batch, n_components) to (batch, n_features), or, with
``image_shape`` set, to images (batch, channels, height, width), which the
estimator flattens.

Here a small transposed-convolution generator learns scikit-learn's 8x8
digits with a Laplace spread, beside the built-in fully connected
generator of about the same size. The training is short so that the
example runs in well under a minute on one CPU core.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from skspread import DeltaVAE

torch.set_num_threads(1)

X = load_digits().data  # 1797 images, pixels 0-16: no rescaling needed


class ConvGenerator(nn.Module):
    """Latent code -> a 4x4 grid of features -> an 8x8 image."""

    def __init__(self, n_components, channels=16):
        super().__init__()
        self.channels = channels
        self.dense = nn.Sequential(nn.Linear(n_components, channels * 4 * 4), nn.ReLU())
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 1, 3, padding=1),
        )

    def forward(self, Z):
        grid = self.dense(Z).reshape(-1, self.channels, 4, 4)
        return self.upsample(grid)  # (batch, 1, 8, 8)


shared = dict(
    n_components=8,
    hidden_layer_sizes=(128,),
    spread="laplace",
    n_epochs=25,
    batch_size=64,
    device="cpu",
    random_state=0,
)
models = {
    "your conv generator": DeltaVAE(
        generator=ConvGenerator,
        generator__n_components=8,
        generator__channels=16,
        image_shape=(8, 8),
        **shared,
    ),
    "built-in MLP generator": DeltaVAE(**shared),
}
for name, model in models.items():
    model.fit(X)
    n_weights = sum(p.numel() for p in model.module_.decoder.parameters())
    print(f"{name:>22}: {n_weights} generator weights, "
          f"final loss {model.history_[-1]['loss']:.1f}")

# %%
# Samples
# -------
# 36 draws :math:`g(z)`, :math:`z \sim \mathcal{N}(0, I)` from each generator,
# in the data's units (pixels 0-16): the estimator standardises its inputs
# and puts the scale back on its outputs.
fig, axes = plt.subplots(1, len(models), figsize=(6, 3.3))
for ax, (name, model) in zip(axes, models.items()):
    samples = np.clip(model.sample(36, random_state=1), 0, 16).reshape(6, 6, 8, 8)
    ax.imshow(samples.transpose(0, 2, 1, 3).reshape(48, 48), cmap="gray_r")
    ax.set_title(name, fontsize=10)
    ax.axis("off")
fig.tight_layout()
plt.show()
