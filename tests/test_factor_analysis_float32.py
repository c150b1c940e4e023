"""SpreadFactorAnalysis keeps float32: fitted arrays and outputs, statistics in float64."""

import numpy as np
import pytest

from skspread import SpreadFactorAnalysis

CONFIGURATIONS = [
    dict(),
    dict(noise_variance="diagonal"),
    dict(noise_variance=0.2, rotation="varimax"),
    dict(spread=None, noise_variance="diagonal"),
    dict(spread=None, noise_variance=0.2),
]
# Float32 keeps 24 bits: 2^-24 = 6e-8 per rounding. A fit on the float32
# values is the float64 fit of the same values, rounded once more.
FLOAT32_RTOL = 1e-5


def _factor_data(n_samples=2000, n_features=6, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n_samples, 2)) @ rng.standard_normal((2, n_features))
        + rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 1.0, n_features)
        + offset
    )


@pytest.mark.parametrize("params", CONFIGURATIONS)
def test_float32_input_gives_float32_attributes_and_outputs(params):
    X = _factor_data().astype(np.float32)
    model = SpreadFactorAnalysis(2, tol=1e-10, **params).fit(X)
    for name in ("mean_", "components_", "noise_variance_"):
        assert getattr(model, name).dtype == np.float32, name
    Z = model.transform(X)
    assert Z.dtype == np.float32
    assert model.inverse_transform(Z).dtype == np.float32
    assert model.sample(3, random_state=0).dtype == np.float32
    assert model.get_covariance().dtype == np.float32
    if params.get("spread", "gaussian") is None:
        assert model.get_precision().dtype == np.float32
    # The log-likelihood stays float64, and loglike_ is its training total
    # (of the float64 model, here rounded to float32 once).
    assert model.score_samples(X).dtype == np.float64
    np.testing.assert_allclose(
        model.loglike_[-1], model.score_samples(X).sum(), rtol=FLOAT32_RTOL
    )


@pytest.mark.parametrize("params", CONFIGURATIONS)
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_float32_fit_is_the_float64_fit_of_the_same_values(params, offset):
    # Far from the origin a float32 scatter would lose its digits: the
    # statistics accumulate in float64, so the fits agree to float32 rounding.
    X32 = _factor_data(offset=offset).astype(np.float32)
    fit32 = SpreadFactorAnalysis(2, tol=1e-10, **params).fit(X32)
    fit64 = SpreadFactorAnalysis(2, tol=1e-10, **params).fit(X32.astype(np.float64))
    for name in ("mean_", "components_", "noise_variance_"):
        expected = getattr(fit64, name)
        np.testing.assert_allclose(
            getattr(fit32, name), expected, rtol=FLOAT32_RTOL,
            atol=FLOAT32_RTOL * np.abs(expected).max(), err_msg=name,
        )
    np.testing.assert_allclose(fit32.loglike_, fit64.loglike_, rtol=1e-12)
    Z64 = fit64.transform(X32.astype(np.float64))
    # transform subtracts the mean in float32: its rounding is 6e-8 |mu|.
    np.testing.assert_allclose(
        fit32.transform(X32), Z64, atol=FLOAT32_RTOL * (1 + offset) * np.abs(Z64).max()
    )
