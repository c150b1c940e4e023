"""
======================================================================
Deterministic ICA: SpreadICA, FastICA, and the freezing of standard EM
======================================================================

Ten observations mix five independent Laplace sources, :math:`x = A z`, with
no noise (non-square, deterministic ICA). FastICA finds :math:`A` by
maximising non-Gaussianity; :class:`~skspread.SpreadICA` fits the same model
by maximum likelihood, which also gives a likelihood (``score``) and handles
observation noise. At its defaults it learns the noise: here it finds that
the data leave no room for any (they span exactly five directions) and
maximises the exact likelihood on their subspace; on noisy data it runs
spread EM, the subject of the rest of this example.

Standard EM on the *noisy* model, with noise :math:`\\gamma^2` on the model
only, freezes as :math:`\\gamma \\to 0`: with :math:`\\gamma = 0` its
M-step returns its input, :math:`A_{k+1} = A_k` (paper eq. 43-45), and for
small :math:`\\gamma` it barely moves. Spread EM adds Gaussian noise to data
and model alike, so the posterior of the sources stays broad and EM moves,
whatever :math:`\\gamma`. This is a small version of the paper's figure 4a.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning

from skspread import SpreadICA
from skspread.datasets import make_ica
from skspread.metrics import mixing_error

n_features, n_components = 10, 5

# %%
# SpreadICA beside FastICA, noise-free
# ------------------------------------
# The error is the mean relative error of the entries of :math:`A`, after
# matching columns up to permutation and sign
# (:func:`skspread.metrics.mixing_error`).
data = make_ica(5000, n_features, n_components, noise_std=0.0, random_state=0)
for estimator in [
    SpreadICA(n_components=n_components, random_state=0),
    FastICA(n_components=n_components, whiten="unit-variance", random_state=0),
]:
    start = time.perf_counter()
    estimator.fit(data.data)
    seconds = time.perf_counter() - start
    error = mixing_error(estimator.mixing_, data.mixing)
    print(f"{type(estimator).__name__:>9}: mixing error {error:.4f} in {seconds:.2f} s")

# %%
# Standard EM freezes, spread EM does not
# ---------------------------------------
# Both start from the same PCA estimate (``init='pca'``) on data with a
# little noise, :math:`\gamma = 0.01`. Stopping the fit after ``max_iter``
# EM steps traces the error along the iterations (the fits are
# deterministic with ``random_state`` and ``tol=0`` never stops them early,
# so each shorter fit is a prefix of the longer ones). The early stops would
# warn that EM did not converge; that is expected here, so the warning is
# silenced.
gamma = 0.01
noisy = make_ica(2000, n_features, n_components, noise_std=gamma, random_state=1)


def error_after(max_iter, spread, gamma, data):
    model = SpreadICA(
        n_components=n_components,
        spread=spread,
        noise_variance=gamma**2,
        init="pca",
        n_importance_samples=100,
        max_iter=max_iter,
        tol=0.0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data.data)
    return mixing_error(model.mixing_, data.mixing)


iterations = [1, 3, 10, 30, 100, 300]
trace = {
    spread: [error_after(k, spread, gamma, noisy) for k in iterations]
    for spread in [None, "gaussian"]
}

# %%
# Error against the observation noise
# -----------------------------------
# After at most 300 iterations from the PCA start, for several noise levels:
# standard EM only works once the noise is large, spread EM at every level.
gammas = [0.01, 0.03, 0.1, 0.3, 1.0]
by_gamma = {spread: [] for spread in [None, "gaussian"]}
for g in gammas:
    noisy_g = make_ica(2000, n_features, n_components, noise_std=g, random_state=1)
    for spread in by_gamma:
        by_gamma[spread].append(error_after(300, spread, g, noisy_g))
for spread, errors in by_gamma.items():
    label = "spread EM  " if spread else "standard EM"
    print(label, " ".join(f"{e:.3f}" for e in errors))

# %%
# The figure: left, the error along the EM iterations at gamma = 0.01;
# right, the error after 300 iterations against gamma.
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].semilogx(iterations, trace[None], "s-", color="C3", label="standard EM (noise only)")
axes[0].semilogx(iterations, trace["gaussian"], "o-", color="C0", label="spread EM")
axes[0].set(xlabel="EM iterations", ylabel="mixing error", title=f"gamma = {gamma}")
axes[0].legend(fontsize=8)

axes[1].semilogx(gammas, by_gamma[None], "s-", color="C3", label="standard EM (noise only)")
axes[1].semilogx(gammas, by_gamma["gaussian"], "o-", color="C0", label="spread EM")
axes[1].set(xlabel="observation noise gamma", ylabel="mixing error after 300 iterations")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
