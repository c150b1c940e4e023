"""
===================================================
Choosing n_components and spread_scale by the score
===================================================

Every skspread estimator has a ``score``, the mean spread log-likelihood of
the data passed to it, so scikit-learn's model selection applies unchanged.
Here :class:`~skspread.SpreadFactorAnalysis` sits in a
:class:`~sklearn.pipeline.Pipeline` after a
:class:`~sklearn.preprocessing.StandardScaler`, and
:class:`~sklearn.model_selection.GridSearchCV` chooses

1. ``n_components``, for a model that learns per-feature noise
   (``noise_variance='diagonal'``);
2. ``spread_scale``, for the deterministic model (``noise_variance=0``) with
   the chosen number of components.

The data have K = 3 latent factors in D = 10 features, plus noise.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skspread import SpreadFactorAnalysis

rng = np.random.default_rng(0)
n_samples, n_features, true_components = 2000, 10, 3
loadings = rng.standard_normal((true_components, n_features))
noise_std = rng.uniform(0.3, 0.7, n_features)
X = rng.standard_normal((n_samples, true_components)) @ loadings
X += noise_std * rng.standard_normal((n_samples, n_features))

# %%
# The number of components
# ------------------------
# The held-out score rises until K = 3 and is flat after it: the extra
# factors get loadings near zero. Among models within one standard error of
# the best score, the refit rule keeps the one with fewest components.


def fewest_components_within_one_standard_error(cv_results):
    scores = cv_results["mean_test_score"]
    errors = cv_results["std_test_score"] / np.sqrt(5)
    best = np.argmax(scores)
    candidates = np.flatnonzero(scores >= scores[best] - errors[best])
    components = np.asarray(cv_results["param_model__n_components"], dtype=int)
    return candidates[np.argmin(components[candidates])]


factor_model = Pipeline(
    [("scale", StandardScaler()), ("model", SpreadFactorAnalysis(noise_variance="diagonal"))]
)
component_grid = list(range(1, 7))
search = GridSearchCV(
    factor_model,
    {"model__n_components": component_grid},
    cv=5,
    refit=fewest_components_within_one_standard_error,
).fit(X)
chosen_components = search.best_params_["model__n_components"]
print(f"chosen n_components: {chosen_components} (true {true_components})")

# %%
# The spread scale of the deterministic model
# -------------------------------------------
# The deterministic model puts no density off its K-dimensional subspace; at
# evaluation the spread is what accounts for the data there. The held-out
# score is highest for a spread whose variance is close to the variance the
# subspace leaves unexplained, the mean of the discarded eigenvalues of the
# (scaled) data covariance: the spread plays the role of probabilistic PCA's
# noise.
deterministic = Pipeline(
    [
        ("scale", StandardScaler()),
        ("model", SpreadFactorAnalysis(n_components=chosen_components, noise_variance=0.0)),
    ]
)
scale_grid = np.round(np.linspace(0.1, 1.0, 19), 2)
scale_search = GridSearchCV(deterministic, {"model__spread_scale": scale_grid}, cv=5).fit(X)
eigenvalues = np.linalg.eigvalsh(np.cov(StandardScaler().fit_transform(X), rowvar=False))
unexplained_std = np.sqrt(eigenvalues[: n_features - chosen_components].mean())
chosen_scale = scale_search.best_params_["model__spread_scale"]
print(f"chosen spread_scale: {chosen_scale} "
      f"(root mean discarded eigenvalue {unexplained_std:.3f})")

# %%
# The held-out scores: left, against the number of components; right,
# against the spread scale of the deterministic model.
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].errorbar(
    component_grid,
    search.cv_results_["mean_test_score"],
    yerr=search.cv_results_["std_test_score"] / np.sqrt(5),
    fmt="o-",
)
axes[0].axvline(chosen_components, color="k", ls=":", label="chosen")
axes[0].set(xlabel="n_components", ylabel="held-out score", title="noise_variance='diagonal'")
axes[0].legend(fontsize=8)

axes[1].plot(scale_grid, scale_search.cv_results_["mean_test_score"], "o-")
axes[1].axvline(unexplained_std, color="C3", ls="--", label="root mean discarded eigenvalue")
axes[1].axvline(chosen_scale, color="k", ls=":", label="chosen")
axes[1].set(xlabel="spread_scale", ylabel="held-out score",
            title=f"noise_variance=0, n_components={chosen_components}")
axes[1].legend(fontsize=8)
fig.tight_layout()

# %%
# A caution: scores at different spread scales are likelihoods of
# differently spread data. For a model that learns its own noise, like the
# first one, the score only falls as the spread grows, because spread data
# have more entropy; every valid spread gives a consistent estimate, so there
# the spread scale is a matter of the estimator's variance, not of its
# target.
plt.show()
