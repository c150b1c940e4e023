"""Spread noise objects (paper section 2.1, eq 24-25; spec section 1)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from skspread.spread import (
    BaseSpread,
    GaussianSpread,
    LaplaceSpread,
    check_spread,
    lowrank_gaussian_log_prob,
)

N_STANDARD_ERRORS = 4.0
PROPERTY_SETTINGS = settings(deadline=None, max_examples=50)
SPREADS = [GaussianSpread(0.5), GaussianSpread(2.0), LaplaceSpread(0.3), LaplaceSpread(1.5)]
SCIPY_KERNEL = {GaussianSpread: stats.norm, LaplaceSpread: stats.laplace}


# --- characteristic functions (paper eq 24-25) -----------------------------------


@pytest.mark.parametrize("spread", SPREADS, ids=repr)
def test_characteristic_function_matches_empirical_eq24_25(spread):
    """E[exp(i w e)] against the sample mean of cos(w e) and sin(w e).

    For a symmetric kernel with characteristic function phi,
    Var cos(w e) = E cos^2(w e) - phi(w)^2 = (1 + phi(2w)) / 2 - phi(w)^2 and
    Var sin(w e) = (1 - phi(2w)) / 2, so the standard error of the mean of n
    draws is the square root of these over n.
    """
    n = 20_000
    noise = spread.sample(np.zeros((n, 1)), random_state=0)[:, 0]
    frequencies = np.array([0.25, 0.7, 1.5, 3.0]) / spread.scale
    phi = spread.characteristic_function(frequencies)
    phi_double = spread.characteristic_function(2 * frequencies)
    angles = np.outer(noise, frequencies)
    cos_se = np.sqrt(((1 + phi_double) / 2 - phi**2) / n)
    sin_se = np.sqrt((1 - phi_double) / 2 / n)
    assert np.all(np.abs(np.cos(angles).mean(axis=0) - phi) <= N_STANDARD_ERRORS * cos_se)
    assert np.all(np.abs(np.sin(angles).mean(axis=0)) <= N_STANDARD_ERRORS * sin_se)


def test_characteristic_functions_closed_forms():
    w = np.array([0.0, 1.0, 2.0])
    assert np.allclose(GaussianSpread(0.5).characteristic_function(w), np.exp(-0.125 * w**2))
    assert np.allclose(LaplaceSpread(0.5).characteristic_function(w), 1 / (1 + 0.25 * w**2))


# --- validity ------------------------------------------------------------------------

wide_scales = st.floats(1e-300, 1e300).filter(lambda s: s > 0)


@PROPERTY_SETTINGS
@given(scale=wide_scales, kind=st.sampled_from([GaussianSpread, LaplaceSpread]))
def test_gaussian_and_laplace_spreads_are_valid_for_every_scale(scale, kind):
    spread = kind(scale)
    assert spread.check_valid() is spread


class _BimodalSpread(BaseSpread):
    """k = (N(-s, s^2) + N(s, s^2)) / 2: positive density, phi = cos(s w) exp(-s^2 w^2 / 2).

    The characteristic function changes sign at w = pi / (2 s): not a valid spread.
    """

    variance = None

    def noise(self, shape, random_state=None):
        raise NotImplementedError

    def _log_density(self, E):
        s = self.scale
        return np.logaddexp(
            stats.norm.logpdf(E, -s, s), stats.norm.logpdf(E, s, s)
        ) - math.log(2.0)

    def _expected_log_density(self, D):
        raise NotImplementedError

    def characteristic_function(self, w):
        return np.cos(self.scale * w) * np.exp(-0.5 * np.square(self.scale * w))


class _UniformSpread(_BimodalSpread):
    """Uniform on [-s, s]: its density vanishes outside."""

    def _log_density(self, E):
        return np.where(np.abs(E) <= self.scale, -math.log(2 * self.scale), -np.inf)

    def characteristic_function(self, w):
        return np.sinc(self.scale * np.asarray(w) / np.pi)


def test_check_valid_refuses_sign_changing_characteristic_function():
    # No grid point is a zero of cos(w): only the sign change between 1.57 and 1.58 shows it.
    frequencies = np.linspace(-3.0, 3.0, 601)
    assert np.all(_BimodalSpread(1.0).characteristic_function(frequencies) != 0)
    with pytest.raises(ValueError, match="characteristic function that vanishes"):
        _BimodalSpread(1.0).check_valid(frequencies)
    with pytest.raises(ValueError, match="characteristic function that vanishes"):
        _BimodalSpread(1.0).check_valid()


def test_check_valid_refuses_vanishing_density():
    with pytest.raises(ValueError, match="density that vanishes"):
        _UniformSpread(1.0).check_valid()


@pytest.mark.parametrize("kind", [GaussianSpread, LaplaceSpread])
@pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, np.inf, -np.inf, True, "1.0", None])
def test_scale_must_be_finite_and_positive(kind, scale):
    with pytest.raises(ValueError, match="finite float > 0"):
        kind(scale)


# --- sampling ------------------------------------------------------------------------


@pytest.mark.parametrize("spread", SPREADS, ids=repr)
def test_sample_is_reproducible_and_centred_on_x(spread):
    X = np.arange(12.0).reshape(4, 3)
    first = spread.sample(X, random_state=7)
    assert first.shape == X.shape
    assert np.array_equal(first, spread.sample(X, random_state=7))
    assert np.array_equal(first, spread.sample(X, random_state=np.random.RandomState(7)))
    assert not np.array_equal(first, spread.sample(X, random_state=8))
    # Same draws around any centre: x + e - x recovers e up to rounding of x + e.
    assert np.allclose(first - X, spread.sample(np.zeros_like(X), random_state=7), atol=1e-13)


@pytest.mark.parametrize("spread", SPREADS, ids=repr)
def test_sample_variance_matches_variance_property(spread):
    """The sample variance has standard error sqrt((mu_4 - var^2) / n) (known mean 0).

    mu_4 = 3 var^2 for the Gaussian and 6 var^2 for the Laplace kernel.
    """
    n = 20_000
    noise = spread.sample(np.zeros((n, 1)), random_state=1)[:, 0]
    kurtosis = 3.0 if isinstance(spread, GaussianSpread) else 6.0
    standard_error = spread.variance * math.sqrt((kurtosis - 1.0) / n)
    assert abs(np.mean(noise**2) - spread.variance) <= N_STANDARD_ERRORS * standard_error


# --- log-densities -------------------------------------------------------------------


def _random_rows(seed, shape=(5, 3)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape)


@pytest.mark.parametrize("spread", SPREADS, ids=repr)
def test_log_prob_matches_scipy(spread):
    Y, X = _random_rows(0)
    expected = SCIPY_KERNEL[type(spread)].logpdf(Y, loc=X, scale=spread.scale).sum(axis=1)
    assert np.allclose(spread.log_prob(Y, X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spread", SPREADS, ids=repr)
def test_log_prob_and_expected_log_prob_same_in_numpy_and_torch(spread):
    torch = pytest.importorskip("torch")
    Y, X = _random_rows(1)
    for method in (spread.log_prob, spread.expected_log_prob):
        in_numpy = method(Y, X)
        in_torch = method(torch.from_numpy(Y), torch.from_numpy(X))
        assert isinstance(in_torch, torch.Tensor)
        assert np.allclose(in_torch.numpy(), in_numpy, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spread", SPREADS, ids=repr)
def test_expected_log_prob_matches_monte_carlo_spec_section5(spread):
    """E_{y ~ k(. - x)} log k(y - m) against the mean over n spread copies y of x."""
    n = 20_000
    X, M = _random_rows(2, shape=(3, 2))
    closed = spread.expected_log_prob(X, M)
    rng = np.random.RandomState(3)
    for x, m, value in zip(X, M, closed):
        draws = spread.log_prob(spread.sample(np.tile(x, (n, 1)), random_state=rng), m)
        standard_error = draws.std(ddof=1) / math.sqrt(n)
        assert abs(draws.mean() - value) <= N_STANDARD_ERRORS * standard_error


def test_expected_log_prob_gaussian_drops_half_per_coordinate():
    # E log N(y; m, s^2) = log N(x; m, s^2) - 1/2 per coordinate (spec section 5).
    spread = GaussianSpread(0.7)
    X, M = _random_rows(4)
    assert np.allclose(
        spread.expected_log_prob(X, M), spread.log_prob(X, M) - 0.5 * X.shape[1], rtol=1e-14
    )


# --- low-rank Gaussian (spec section 1, Woodbury) --------------------------------------


@st.composite
def lowrank_problems(draw):
    n_features = draw(st.integers(1, 8))
    rank = draw(st.integers(1, n_features))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.floats(0.1, 3.0))
    factor_size = draw(st.floats(0.0, 3.0))
    rng = np.random.default_rng(seed)
    factor = factor_size * rng.normal(size=(n_features, rank))
    residuals = rng.normal(size=(6, n_features)) * (scale + factor_size)
    return residuals, scale, factor


def _dense_log_prob(residuals, scale, factor):
    covariance = scale**2 * np.eye(factor.shape[0]) + factor @ factor.T
    return stats.multivariate_normal(np.zeros(factor.shape[0]), covariance).logpdf(
        residuals
    ).reshape(-1)


@PROPERTY_SETTINGS
@given(problem=lowrank_problems())
def test_lowrank_gaussian_log_prob_matches_dense_numpy(problem):
    residuals, scale, factor = problem
    expected = _dense_log_prob(residuals, scale, factor)
    assert np.allclose(lowrank_gaussian_log_prob(residuals, scale, factor), expected, atol=1e-6)


@PROPERTY_SETTINGS
@given(problem=lowrank_problems())
def test_lowrank_gaussian_log_prob_matches_dense_torch(problem):
    torch = pytest.importorskip("torch")
    residuals, scale, factor = problem
    expected = _dense_log_prob(residuals, scale, factor)
    result = lowrank_gaussian_log_prob(
        torch.from_numpy(residuals), scale, torch.from_numpy(factor)
    )
    assert isinstance(result, torch.Tensor)
    assert np.allclose(result.numpy(), expected, atol=1e-6)


# --- resolving the estimators' ``spread`` parameter --------------------------------------


def test_check_spread_resolves_names_objects_and_none():
    assert check_spread("gaussian", 0.3) == GaussianSpread(0.3)
    assert check_spread("laplace", 2.0) == LaplaceSpread(2.0)
    given_object = LaplaceSpread(0.1)
    assert check_spread(given_object, scale=5.0) is given_object
    assert check_spread(None) is None
    assert GaussianSpread(0.3) != LaplaceSpread(0.3)
    assert hash(GaussianSpread(0.3)) == hash(GaussianSpread(0.3))


@pytest.mark.parametrize("spread", ["normal", 1.0, GaussianSpread])
def test_check_spread_refuses_unknown(spread):
    with pytest.raises(ValueError, match="spread must be one of"):
        check_spread(spread)


def test_check_spread_refuses_none_when_required():
    with pytest.raises(ValueError, match="spread=None"):
        check_spread(None, allow_none=False)
