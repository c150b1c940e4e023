"""
===================================================================
Noise on the model only is biased; spread maximum likelihood is not
===================================================================

The line model of the paper's section 1.1.1: data :math:`x = z\\,\\theta_p`,
:math:`z \\sim \\mathcal{N}(0, 1)`, on a line through the origin of
:math:`\\mathbb{R}^5`, with :math:`\\|\\theta_p\\| = 2`. The model has the
same form, so it has no density, and maximum likelihood needs noise
somewhere.

* *Noise-only MLE* adds :math:`\\mathcal{N}(0, \\sigma^2 I)` to the model
  alone and fits the unspread data (``spread=None, noise_variance=sigma^2``).
  Its large-sample optimum is
  :math:`\\sqrt{(\\|\\theta_p\\|^2 - \\sigma^2)/\\|\\theta_p\\|^2}\\;\\theta_p`
  (paper eq. 12): too short, however much data there is.
* *Spread MLE* adds the same noise to the data and to the model
  (``spread='gaussian', noise_variance=0``); its optimum is
  :math:`\\theta_p` itself.
"""

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from skspread import SpreadFactorAnalysis
from skspread.datasets import make_line

rng = np.random.default_rng(0)
direction = rng.standard_normal(5)
theta = 2.0 * direction / np.linalg.norm(direction)
sigma2 = 1.0


def estimated_norms(n_samples, sigma2, n_repeats=10):
    """|theta| estimated by both methods on ``n_repeats`` data sets."""
    spread_mle = SpreadFactorAnalysis(
        n_components=1, spread="gaussian", spread_scale=math.sqrt(sigma2)
    )
    noise_only = SpreadFactorAnalysis(n_components=1, spread=None, noise_variance=sigma2)
    norms = np.empty((n_repeats, 2))
    for seed in range(n_repeats):
        X = make_line(n_samples, theta, random_state=seed).data
        for column, estimator in enumerate([spread_mle, noise_only]):
            norms[seed, column] = np.linalg.norm(estimator.fit(X).components_[0])
    return norms


# %%
# As the sample size grows
# ------------------------
# Ten data sets per size; the bands are one standard deviation across them.
sizes = np.array([30, 100, 300, 1000, 3000, 10000, 30000])
norms = np.array([estimated_norms(n, sigma2) for n in sizes])
biased = math.sqrt(4.0 - sigma2)

print("N = 30000: spread MLE {:.3f}, noise-only MLE {:.3f} (eq. 12: {:.3f})".format(
    *norms[-1].mean(axis=0), biased))

# %%
# As the noise grows
# ------------------
# With N = 20000 the noise-only estimate follows eq. 12 and collapses to zero
# once :math:`\sigma^2 \ge \|\theta_p\|^2 = 4`; the spread estimate does not
# depend on :math:`\sigma` at all (the spread cancels in the closed form).
variances = np.linspace(0.05, 5.0, 12)
by_noise = np.array([estimated_norms(20000, v, n_repeats=3).mean(axis=0) for v in variances])
fine = np.linspace(0.0, 5.0, 200)

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for column, (label, colour) in enumerate([("spread MLE", "C0"), ("noise-only MLE", "C3")]):
    mean, std = norms[:, :, column].mean(axis=1), norms[:, :, column].std(axis=1)
    axes[0].semilogx(sizes, mean, "o-", color=colour, label=label)
    axes[0].fill_between(sizes, mean - std, mean + std, color=colour, alpha=0.2)
axes[0].axhline(2.0, color="k", ls=":", label="|theta_p| = 2")
axes[0].axhline(biased, color="C3", ls="--", label=f"eq. 12: sqrt(4 - 1) = {biased:.3f}")
axes[0].set(xlabel="N", ylabel="estimated |theta|", title="sigma^2 = 1")
axes[0].legend(fontsize=8)
axes[1].plot(variances, by_noise[:, 0], "o", color="C0", label="spread MLE")
axes[1].plot(variances, by_noise[:, 1], "s", color="C3", label="noise-only MLE")
axes[1].plot(fine, np.sqrt(np.clip(4.0 - fine, 0, None)), "C3--", label="eq. 12")
axes[1].axhline(2.0, color="k", ls=":")
axes[1].set(xlabel="sigma^2 (model noise, or spread)", ylabel="estimated |theta|",
            title="N = 20000")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
