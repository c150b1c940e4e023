"""The public input contract: every public function of skspread.spread,
skspread.divergence, skspread.metrics and the make_* data sets either returns
a finite result of the right shape or raises a ValueError/TypeError that
names the wrong argument, whatever shapes and values it is given (empty,
NaN, infinite, huge, tiny, complex, mismatched, lists, strings, None)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from skspread.datasets import make_ica, make_line
from skspread.divergence import gaussian_kl, spread_kl
from skspread.metrics import amari_distance, frechet_distance, match_components, mixing_error
from skspread.spread import (
    BaseSpread,
    GaussianSpread,
    LaplaceSpread,
    check_spread,
    lowrank_gaussian_log_prob,
)

# Each property runs in well under a second at this size; the file in a few seconds.
CONTRACT = settings(deadline=None, max_examples=60)

EXTREME_VALUES = [0.0, -0.0, 1e-300, -1e-200, 5e-324, 1e200, -1e300, 1.7e308, np.nan, np.inf,
                  -np.inf]
elements = st.one_of(
    st.floats(-10.0, 10.0), st.floats(-10.0, 10.0), st.floats(-10.0, 10.0),
    st.sampled_from(EXTREME_VALUES),
)
any_shape = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
NOT_ARRAYS = [None, "1.0", True, 1j, {"a": 1}]


def argument(shape):
    """Mostly a float array of ``shape``, else a list, another shape, complex or junk."""
    exact = arrays(np.float64, shape, elements=elements)
    return st.one_of(
        exact,
        exact,
        exact.map(lambda array: array.tolist()),
        arrays(np.float64, any_shape, elements=elements),
        arrays(np.complex128, shape, elements=st.complex_numbers(max_magnitude=10.0)),
        arrays(np.bool_, shape),
        st.sampled_from(NOT_ARRAYS),
    )


valid_scales = st.one_of(
    st.floats(0.01, 100.0), st.sampled_from([1e-300, 1e-200, 1e200, 1e300])
)
scales = st.one_of(
    valid_scales,
    st.sampled_from([0.0, -1.0, np.nan, np.inf, -np.inf, 5e-324, 1.7e308, True, "1.0", None,
                     1j, np.float32(2.0), 3]),
)
sides = st.integers(1, 4)
random_states = st.sampled_from([0, None, np.random.RandomState(1), -1, 2.5, "seed", 2**40])


def outcome(call, names):
    """The result of ``call``, or None after a ValueError/TypeError naming one of ``names``."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(name in message for name in names), (
            f"{type(error).__name__} names none of {names}: {message}"
        )
        return None


def assert_finite(result, shape=None):
    array = np.asarray(result)
    assert array.dtype.kind == "f", array.dtype
    assert np.all(np.isfinite(array)), result
    if shape is not None:
        assert array.shape == shape


def _scalar(result):
    assert isinstance(result, float)
    assert_finite(result)
    return result


# --- skspread.spread ----------------------------------------------------------------


@CONTRACT
@given(scale=scales, kind=st.sampled_from([GaussianSpread, LaplaceSpread]))
def test_kernel_scale_and_variance(scale, kind):
    spread = outcome(lambda: kind(scale), ["scale"])
    if spread is not None:
        assert spread.scale > 0
        variance = outcome(lambda: spread.variance, ["scale"])
        if variance is not None:
            assert math.isfinite(variance) and variance > 0


@CONTRACT
@given(
    data=st.data(),
    scale=valid_scales,
    kind=st.sampled_from([GaussianSpread, LaplaceSpread]),
    n_samples=sides,
    n_features=sides,
)
def test_kernel_methods(data, scale, kind, n_samples, n_features):
    spread = kind(scale)
    Y = data.draw(argument((n_samples, n_features)))
    X = data.draw(argument(data.draw(st.sampled_from([(n_samples, n_features), (n_features,)]))))
    log_prob = outcome(lambda: spread.log_prob(Y, X), ["Y", "X"])
    if log_prob is not None:
        assert_finite(log_prob, np.broadcast_shapes(np.shape(Y), np.shape(X))[:-1])
    expected = outcome(lambda: spread.expected_log_prob(Y, X), ["X", "M"])
    if expected is not None:
        assert_finite(expected, np.broadcast_shapes(np.shape(Y), np.shape(X))[:-1])
    random_state = data.draw(random_states)
    sample = outcome(lambda: spread.sample(Y, random_state=random_state), ["X", "random_state"])
    if sample is not None:
        assert_finite(sample, np.shape(Y))
    w = data.draw(argument(data.draw(array_shapes(min_dims=0, max_dims=2, max_side=3))))
    phi = outcome(lambda: spread.characteristic_function(w), ["w"])
    if phi is not None:
        assert_finite(phi, np.shape(w))
        assert np.all((phi >= 0) & (phi <= 1))
    assert outcome(lambda: spread.check_valid(w), ["frequencies", "w", "vanishes"]) in (
        None,
        spread,
    )


@CONTRACT
@given(
    scale=valid_scales,
    kind=st.sampled_from([GaussianSpread, LaplaceSpread]),
    shape=st.one_of(
        st.lists(st.integers(-2, 4), max_size=3).map(tuple),
        st.integers(-2, 4),
        st.sampled_from([(2.0, 3), ("2",), None, (True,)]),
    ),
    random_state=random_states,
)
def test_kernel_noise(scale, kind, shape, random_state):
    noise = outcome(
        lambda: kind(scale).noise(shape, random_state=random_state), ["shape", "random_state"]
    )
    if noise is not None:
        expected = (shape,) if isinstance(shape, int) else shape
        assert noise.shape == expected
        assert np.all(np.isfinite(noise))


@CONTRACT
@given(
    spread=st.sampled_from(
        [None, "gaussian", "laplace", "normal", GaussianSpread(1.0), 1.0, GaussianSpread]
    ),
    scale=scales,
    allow_none=st.sampled_from([True, False, 1, "yes"]),
)
def test_check_spread(spread, scale, allow_none):
    resolved = outcome(
        lambda: check_spread(spread, scale, allow_none=allow_none),
        ["spread", "scale", "allow_none"],
    )
    assert resolved is None or isinstance(resolved, BaseSpread)


@CONTRACT
@given(data=st.data(), scale=scales, n_samples=sides, n_features=sides, rank=sides)
def test_lowrank_gaussian_log_prob(data, scale, n_samples, n_features, rank):
    E = data.draw(argument((n_samples, n_features)))
    factor = data.draw(argument((n_features, rank)))
    result = outcome(lambda: lowrank_gaussian_log_prob(E, scale, factor), ["E", "scale", "factor"])
    if result is not None:
        assert_finite(result, np.shape(E)[:1])


# --- skspread.divergence ----------------------------------------------------------


def covariance_argument(n_features):
    return st.one_of(
        st.just(1.0),
        st.floats(1e-3, 1e3),
        st.sampled_from([0.0, -1.0, 1e-300, 1e300, np.nan]),
        arrays(np.float64, (n_features, n_features), elements=st.floats(-2.0, 2.0)).map(
            lambda F: F @ F.T
        ),
        argument((n_features, n_features)),
    )


@CONTRACT
@given(data=st.data(), n_features=sides)
def test_gaussian_kl(data, n_features):
    mean_p, mean_q = (data.draw(argument((n_features,))) for _ in range(2))
    cov_p, cov_q = (data.draw(covariance_argument(n_features)) for _ in range(2))
    kl = outcome(
        lambda: gaussian_kl(mean_p, cov_p, mean_q, cov_q), ["mean_p", "mean_q", "cov_p", "cov_q"]
    )
    if kl is not None:
        assert _scalar(kl) >= 0


@CONTRACT
@given(data=st.data(), n_features=sides, scale=valid_scales)
def test_spread_kl(data, n_features, scale):
    mean_p, mean_q = (data.draw(argument((n_features,))) for _ in range(2))
    spread = data.draw(
        st.one_of(
            st.sampled_from([GaussianSpread(scale), LaplaceSpread(scale), None, "gaussian"]),
            covariance_argument(n_features),
        )
    )
    covariances = data.draw(
        st.sampled_from([{}, {"cov_p": 0.0}, {"cov_p": 1.0, "cov_q": 2.0}, "drawn"])
    )
    if covariances == "drawn":
        covariances = {
            "cov_p": data.draw(covariance_argument(n_features)),
            "cov_q": data.draw(covariance_argument(n_features)),
        }
    kl = outcome(
        lambda: spread_kl(mean_p, mean_q, spread, **covariances),
        ["mean_p", "mean_q", "spread", "cov_p", "cov_q"],
    )
    if kl is not None:
        assert _scalar(kl) >= 0


# --- skspread.metrics -------------------------------------------------------------


@CONTRACT
@given(data=st.data(), n_features=sides, n_components=sides)
def test_mixing_matrix_metrics(data, n_features, n_components):
    A = data.draw(argument((n_features, n_components)))
    W = data.draw(argument((n_components, n_features)))
    distance = outcome(lambda: amari_distance(W, A), ["W", "A"])
    if distance is not None:
        assert 0 <= _scalar(distance) <= n_components - 1 + 1e-9
    A_est = data.draw(argument((n_features, n_components)))
    matched = outcome(lambda: match_components(A_est, A), ["A_est", "A_true"])
    if matched is not None:
        assert_finite(matched, np.shape(A_est))
    error = outcome(lambda: mixing_error(A_est, A), ["A_est", "A_true"])
    if error is not None:
        assert _scalar(error) >= 0


@CONTRACT
@given(
    data=st.data(),
    n_x=st.integers(0, 5),
    n_y=st.integers(0, 5),
    n_features=sides,
    features=st.sampled_from(
        [None, None, "pca", lambda A: 0.5 * A, lambda A: A[:1], lambda A: A[:, 0]]
    ),
)
def test_frechet_distance(data, n_x, n_y, n_features, features):
    X = data.draw(argument((n_x, n_features)))
    Y = data.draw(argument((n_y, n_features)))
    distance = outcome(lambda: frechet_distance(X, Y, features=features), ["X", "Y", "features"])
    if distance is not None:
        assert _scalar(distance) >= 0


# --- make_* data sets ---------------------------------------------------------------

counts = st.one_of(sides, st.sampled_from([0, -1, 2.5, 2.0, True, "3", None, np.nan]))


@CONTRACT
@given(
    data=st.data(),
    n_samples=counts,
    n_components=sides,
    n_features=sides,
    random_state=random_states,
)
def test_make_line(data, n_samples, n_components, n_features, random_state):
    theta = data.draw(argument(data.draw(st.sampled_from([(n_features,),
                                                          (n_components, n_features)]))))
    line = outcome(
        lambda: make_line(n_samples, theta, random_state=random_state),
        ["n_samples", "theta", "random_state"],
    )
    if line is not None:
        assert_finite(line.data, (int(n_samples), line.theta.shape[1]))


@CONTRACT
@given(
    n_samples=counts,
    n_features=counts,
    n_components=counts,
    noise_std=st.one_of(st.just(0.0), scales),
    source=st.sampled_from(["laplace", "uniform", "gauss", None]),
    random_state=random_states,
)
def test_make_ica(n_samples, n_features, n_components, noise_std, source, random_state):
    ica = outcome(
        lambda: make_ica(n_samples, n_features, n_components, noise_std, source, random_state),
        ["n_samples", "n_features", "n_components", "noise_std", "source", "random_state"],
    )
    if ica is not None:
        assert_finite(ica.data, (int(n_samples), int(n_features)))


# --- the examples and the torch path -----------------------------------------


def test_examples_that_failed_before():
    assert gaussian_kl([0.0], 1e-20, [0.0], 1.0) == pytest.approx(
        0.5 * (1e-20 - 1.0 + 20 * math.log(10.0)), rel=1e-14
    )
    with pytest.raises(ValueError, match="W has 3 columns but A has 4 rows"):
        amari_distance(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="A_true is empty"):
        mixing_error(np.ones((0, 2)), np.ones((0, 2)))
    with pytest.raises(ValueError, match="scale must be a finite float > 0"):
        lowrank_gaussian_log_prob(np.ones((3, 2)), -1.0, np.ones((2, 1)))


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_extreme_scales_give_the_value_in_log_space(scale):
    """log N(e; 0, s^2 (I + V V^T)) = log N(e / s; 0, I + V V^T) - D log s."""
    rng = np.random.default_rng(0)
    E, factor = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    reference = lowrank_gaussian_log_prob(E, 1.0, factor) - 4 * math.log(scale)
    assert np.allclose(
        lowrank_gaussian_log_prob(scale * E, scale, scale * factor), reference, rtol=1e-12
    )
    for kind in (GaussianSpread, LaplaceSpread):
        unit = kind(1.0).log_prob(E, np.zeros(4)) - 4 * math.log(scale)
        assert np.allclose(kind(scale).log_prob(scale * E, np.zeros(4)), unit, rtol=1e-12)
        with pytest.raises(ValueError, match="scale"):
            kind(scale).variance
    # Two deltas 1 apart: ||d||^2 / (2 s^2) with s = 1e200 is 5e-401, below the
    # smallest float; KL(N(0, 1 + s^2) || N(0, 2 + s^2)) likewise rounds to 0.
    assert spread_kl([0.0], [1.0], GaussianSpread(1e200)) == 0.0
    assert spread_kl([0.0], [0.0], GaussianSpread(1e-200), cov_p=1.0, cov_q=2.0) == (
        pytest.approx(0.5 * (0.5 - 1.0 + math.log(2.0)), rel=1e-14)
    )


@pytest.mark.parametrize("kind", [GaussianSpread, LaplaceSpread])
@pytest.mark.parametrize("shape", [(2, -1), (2.0, 3), None])
def test_torch_noise_checks_its_shape(kind, shape):
    torch = pytest.importorskip("torch")
    with pytest.raises((ValueError, TypeError), match="shape must be a tuple of ints"):
        kind(1.0).torch_noise(shape, torch.Generator())
    assert kind(1.0).torch_noise(torch.Size([2, 3]), torch.Generator()).shape == (2, 3)


def test_tensors_are_checked_without_leaving_torch():
    torch = pytest.importorskip("torch")
    spread = GaussianSpread(0.5)
    Y = torch.randn(4, 3, dtype=torch.float32, requires_grad=True)
    X = torch.zeros(3)
    log_prob = spread.log_prob(Y, X)
    assert isinstance(log_prob, torch.Tensor) and log_prob.dtype == torch.float32
    log_prob.sum().backward()
    assert Y.grad is not None
    factor = torch.randn(3, 2, dtype=torch.float64)
    assert isinstance(lowrank_gaussian_log_prob(Y.double(), 0.5, factor), torch.Tensor)
    with pytest.raises(TypeError, match="all torch tensors or all NumPy"):
        spread.log_prob(Y, np.zeros(3))
    with pytest.raises(TypeError, match="Y must hold real numbers"):
        spread.log_prob(torch.zeros(2, 3, dtype=torch.complex64), X)
    with pytest.raises(ValueError, match="E is empty"):
        lowrank_gaussian_log_prob(torch.zeros(0, 3, dtype=torch.float64), 0.5, factor)
    with pytest.raises(ValueError, match="do not broadcast"):
        spread.expected_log_prob(torch.zeros(2, 3), torch.zeros(2, 2))


def test_spread_kl_of_means_too_far_apart_for_the_spread_names_the_overflow():
    # Found by hypothesis on a fresh clone: SciPy's anonymous "array must not
    # contain infs or NaNs" instead of the named overflow.
    with pytest.raises(ValueError, match="overflows float64"):
        spread_kl([0.0, 0.0], [1e200, 0.0], 1e-300)
