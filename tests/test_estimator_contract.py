"""The contract every spread estimator shares (skspread/_base.py).

Units: a fit on c * X is the fit on X scaled. Atomic refits: a fit that
raises leaves the previous fitted state whole. The noise-only baseline rule,
the fitted spread attributes and the checks of sample and
inverse_transform are the same everywhere.
"""

import numpy as np
import pytest

from skspread import SpreadFactorAnalysis
from skspread._testing import factor_analysis_module
from skspread.spread import GaussianSpread

SCALES = [1e-6, 1e-3, 1e3, 1e6]


def _factor_data(n_samples=400, n_features=6, n_components=2, seed=0):
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n_components, n_features))
    noise = rng.uniform(0.2, 1.0, size=n_features)
    return (
        rng.standard_normal((n_samples, n_components)) @ loadings
        + rng.standard_normal((n_samples, n_features)) * np.sqrt(noise)
        + rng.uniform(-3, 3, size=n_features)
    )


@pytest.mark.parametrize("noise_variance", [0.0, "diagonal"])
@pytest.mark.parametrize("spread", ["gaussian", None])
@pytest.mark.parametrize("scale", SCALES)
def test_factor_analysis_is_equivariant_to_units(scale, spread, noise_variance):
    if spread is None and noise_variance == 0.0:
        pytest.skip("the noise-only baseline needs model noise")
    X = _factor_data()
    params = dict(n_components=2, spread=spread, noise_variance=noise_variance, tol=1e-8)
    reference = SpreadFactorAnalysis(**params).fit(X)
    scaled = SpreadFactorAnalysis(**params).fit(scale * X)
    np.testing.assert_allclose(scaled.components_, scale * reference.components_, rtol=1e-6)
    np.testing.assert_allclose(scaled.mean_, scale * reference.mean_, rtol=1e-9)
    np.testing.assert_allclose(
        scaled.noise_variance_, scale**2 * reference.noise_variance_, rtol=1e-6, atol=0
    )
    np.testing.assert_allclose(scaled.transform(scale * X), reference.transform(X), atol=1e-6)
    n_features = X.shape[1]
    assert scaled.score(scale * X) == pytest.approx(
        reference.score(X) - n_features * np.log(scale), rel=1e-9, abs=1e-6
    )
    if spread is None:
        assert scaled.spread_scale_ is None
    else:
        assert scaled.spread_scale_ == pytest.approx(scale * reference.spread_scale_)


def test_factor_analysis_refit_that_is_interrupted_keeps_the_previous_fit(monkeypatch):
    X = _factor_data()
    model = SpreadFactorAnalysis(2, noise_variance="diagonal").fit(X)
    before = {name: getattr(model, name) for name in ("mean_", "components_", "noise_variance_")}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(factor_analysis_module, "_fit_diagonal", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X[:, :5] + 100.0)
    assert model.n_features_in_ == 6
    for name, value in before.items():
        assert getattr(model, name) is value


def test_factor_analysis_refit_that_fails_validation_keeps_the_previous_fit():
    X = _factor_data()
    model = SpreadFactorAnalysis(2).fit(X)
    components, mean = model.components_, model.mean_
    with pytest.raises(ValueError, match="at most n_features"):
        model.set_params(n_components=4).fit(X[:, :3])
    assert model.components_ is components and model.mean_ is mean
    assert model.n_features_in_ == 6


@pytest.mark.parametrize("zero", [0, 0.0, np.float32(0.0), np.int64(0), np.float64(0.0)])
def test_noise_only_baseline_without_noise_is_refused_for_any_zero_scalar(zero):
    with pytest.raises(ValueError, match="no likelihood"):
        SpreadFactorAnalysis(2, spread=None, noise_variance=zero).fit(_factor_data())


@pytest.mark.parametrize(
    "n_samples, error", [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("3", TypeError),
                         (True, TypeError)]
)
def test_sample_refuses_what_is_not_a_positive_int(n_samples, error):
    model = SpreadFactorAnalysis(2).fit(_factor_data())
    with pytest.raises(error, match="n_samples"):
        model.sample(n_samples)
    assert model.sample(np.int64(3)).shape == (3, 6)


def test_fitted_spread_attributes_are_the_kernel_and_its_scale():
    X = _factor_data()
    model = SpreadFactorAnalysis(2, spread=GaussianSpread(0.3), spread_scale=5.0).fit(X)
    assert model.spread_ == GaussianSpread(0.3) and model.spread_scale_ == 0.3
    auto = SpreadFactorAnalysis(2).fit(X)
    assert isinstance(auto.spread_, GaussianSpread)
    assert auto.spread_scale_ == pytest.approx(0.5 * np.sqrt(np.mean(np.var(X, axis=0))))
    baseline = SpreadFactorAnalysis(2, spread=None, noise_variance=0.1).fit(X)
    assert baseline.spread_ is None and baseline.spread_scale_ is None


def test_inverse_transform_checks_the_latent_columns():
    model = SpreadFactorAnalysis(2).fit(_factor_data())
    with pytest.raises(ValueError, match="expects n_components=2"):
        model.inverse_transform(np.zeros((3, 3)))
