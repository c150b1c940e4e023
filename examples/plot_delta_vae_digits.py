"""
=================================================
The delta-VAE on digits: fixed and learned spread
=================================================

A :class:`~skspread.DeltaVAE` is a deterministic generator :math:`x =
g(z)` trained by spread maximum likelihood: noise is added to the data and
to the generator's output alike, and the spread likelihood is bounded below
by a VAE's evidence lower bound. Here it learns scikit-learn's 8x8 digits
with three spreads: Gaussian, Laplace (same variance), and a Gaussian whose
covariance :math:`\\sigma^2 I + U U^\\top` is learned to maximise the
divergence (paper section 3.1). The standard VAE, with the same networks
and Gaussian noise on the model only, is shown for reference.

The networks are small and the training short so that the example runs in a
minute on a CPU; the samples are correspondingly rough.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits

from skspread import DeltaVAE

# Networks this small train faster on one CPU thread: with several, torch
# spends more time synchronising its threads than computing (about four times
# the CPU time with two threads on a busy two-core machine).
torch.set_num_threads(1)

X = load_digits().data / 16.0  # 1797 images, pixels in [0, 1]

shared = dict(
    n_components=8,
    hidden_layer_sizes=(256, 256),
    n_epochs=40,
    batch_size=64,
    device="cpu",
    random_state=0,
)
models = {
    "Gaussian spread": DeltaVAE(spread="gaussian", **shared),
    "Laplace spread": DeltaVAE(spread="laplace", **shared),
    "learned covariance": DeltaVAE(
        spread="gaussian", learn_spread="covariance", spread_rank=4, **shared
    ),
    "VAE (noise on model)": DeltaVAE(spread=None, **shared),
}
for name, model in models.items():
    model.fit(X)
    history = model.history_
    # The VAE has no spread (spread_scale_ is None): its model noise instead.
    width = model.spread_scale_ or np.sqrt(model.noise_variance_)
    print(f"{name:>21}: noise scale {width:.3f}, "
          f"loss {history[0]['loss']:.1f} -> {history[-1]['loss']:.1f} "
          f"in {sum(epoch['time'] for epoch in history):.1f} s")

# %%
# Samples
# -------
# Each panel shows 36 draws :math:`g(z)`, :math:`z \sim \mathcal{N}(0, I)`:
# the generator's outputs, with no noise added.
fig, axes = plt.subplots(1, len(models), figsize=(3 * len(models), 3.3))
for ax, (name, model) in zip(axes, models.items()):
    samples = np.clip(model.sample(36, random_state=1), 0, 1).reshape(6, 6, 8, 8)
    ax.imshow(samples.transpose(0, 2, 1, 3).reshape(48, 48), cmap="gray_r")
    ax.set_title(name, fontsize=10)
    ax.axis("off")
fig.tight_layout()

# %%
# Training curves
# ---------------
# The loss is the negative ELBO per image of each model's own spread data, so
# the curves of different spreads are not comparable in level, only in shape.
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, model in models.items():
    ax.plot([epoch["loss"] for epoch in model.history_], label=name)
ax.set(xlabel="epoch", ylabel="negative ELBO per image")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
