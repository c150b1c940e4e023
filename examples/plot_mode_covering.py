"""
========================================
Why maximum likelihood covers every mode
========================================

Maximum likelihood minimises :math:`\\mathrm{KL}(p \\| q)`, which charges
:math:`-\\log q(x)` wherever the data are: a model that leaves any data
without density pays without bound. Here the data come from
:math:`\\tfrac12\\mathcal{N}(0, 1) + \\tfrac12\\mathcal{N}(16, 1)`. The best
single Gaussian sits between the modes, with mean 8 and standard deviation
:math:`\\sqrt{1 + 8^2} \\approx 8.06`, putting most of its mass where there
are no data; a two-component mixture fits both modes.

An implicit model is the extreme case: its samples lie on a manifold, so any
data point off it has zero density and the likelihood is :math:`-\\infty`.
The spread divergence removes the infinity by spreading data and model alike
(see the :ref:`user guide <implicit_models>`).
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.mixture import GaussianMixture

rng = np.random.default_rng(0)
n_samples = 20000
component = rng.integers(0, 2, size=n_samples)
X = (16.0 * component + rng.standard_normal(n_samples))[:, None]

# %%
# One Gaussian by maximum likelihood: the sample mean and standard deviation.
single_mean, single_std = X.mean(), X.std()
print(f"one Gaussian: mean {single_mean:.2f} (8 expected), "
      f"std {single_std:.2f} ({np.sqrt(65):.2f} expected)")

# %%
# Two components by EM, with scikit-learn's GaussianMixture.
mixture = GaussianMixture(n_components=2, random_state=0).fit(X)
order = np.argsort(mixture.means_.ravel())
means = mixture.means_.ravel()[order]
stds = np.sqrt(mixture.covariances_.ravel()[order])
print(f"two components: means {means[0]:.2f} and {means[1]:.2f}, "
      f"stds {stds[0]:.2f} and {stds[1]:.2f}")
print(f"mean log-likelihood: one Gaussian "
      f"{norm(single_mean, single_std).logpdf(X).mean():.3f}, "
      f"two components {mixture.score(X):.3f}")

# %%
# The single Gaussian covers both modes at the price of a wide, low density:
# its peak is at 8, where the data have almost no mass.
grid = np.linspace(-8.0, 24.0, 800)
true_density = 0.5 * norm(0, 1).pdf(grid) + 0.5 * norm(16, 1).pdf(grid)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(X.ravel(), bins=200, density=True, color="0.85", label="data")
ax.plot(grid, true_density, "k", lw=1, label="0.5 N(0,1) + 0.5 N(16,1)")
ax.plot(grid, norm(single_mean, single_std).pdf(grid), "C3",
        label=f"one Gaussian: N({single_mean:.1f}, {single_std:.2f}^2)")
ax.plot(grid, np.exp(mixture.score_samples(grid[:, None])), "C0--",
        label="two-component fit")
ax.set(xlabel="x", ylabel="density", ylim=(0, 0.25))
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
