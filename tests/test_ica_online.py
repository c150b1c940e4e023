"""SpreadICA.partial_fit: online EM over blocks of rows."""

import math
import pickle

import numpy as np
import pytest

from skspread import SpreadICA
from skspread.datasets import make_ica
from skspread.metrics import mixing_error

N_SAMPLES = 4000
N_BLOCKS = 4


def _data(seed=0, n_samples=N_SAMPLES):
    return make_ica(n_samples, n_features=4, n_components=2, random_state=seed)


def _online(X, n_blocks=N_BLOCKS, **params):
    estimator = SpreadICA(2, n_importance_samples=300, random_state=0, **params)
    for block in np.array_split(X, n_blocks):
        estimator.partial_fit(block)
    return estimator


@pytest.mark.parametrize("seed", [0, 4, 7])
def test_partial_fit_over_blocks_approaches_the_batch_fit(seed):
    data = _data(seed)
    online = _online(data.data)
    batch = SpreadICA(2, n_importance_samples=300, random_state=0).fit(data.data)
    # Both estimate A from the same N rows: each is O(1/sqrt(N)) from the
    # truth (the batch fit's error is 0.01-0.03 here, 0.6 to 1.9 / sqrt(N)),
    # and the online fit is as far from the batch fit as two estimates from N rows.
    scale = 1.0 / math.sqrt(N_SAMPLES)
    assert mixing_error(online.mixing_, data.mixing) < 3 * scale
    assert mixing_error(online.mixing_, batch.mixing_) < 2 * scale
    assert online.n_samples_seen_ == N_SAMPLES
    np.testing.assert_allclose(online.mean_, data.data.mean(axis=0), atol=1e-12)


def test_pickling_between_blocks_keeps_the_state():
    X = _data().data
    blocks = np.array_split(X, N_BLOCKS)
    straight = _online(X)
    resumed = SpreadICA(2, n_importance_samples=300, random_state=0)
    for block in blocks[:2]:
        resumed.partial_fit(block)
    resumed = pickle.loads(pickle.dumps(resumed))
    for block in blocks[2:]:
        resumed.partial_fit(block)
    for name in ("mixing_", "mean_", "noise_variance_", "loglike_", "n_iter_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name), name)
    np.testing.assert_array_equal(resumed.transform(X[:5]), straight.transform(X[:5]))


def test_a_failing_block_leaves_the_state_whole():
    X = _data().data
    estimator = SpreadICA(2, n_importance_samples=300, random_state=0)
    estimator.partial_fit(X[:1000])
    before = pickle.dumps(estimator)
    with pytest.raises(ValueError, match="features"):
        estimator.partial_fit(X[1000:2000, :3])
    bad = X[1000:2000].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimator.partial_fit(bad)
    assert pickle.dumps(estimator) == before
    # It goes on as if the failed blocks had not been given.
    estimator.partial_fit(X[1000:2000])
    reference = SpreadICA(2, n_importance_samples=300, random_state=0)
    reference.partial_fit(X[:1000]).partial_fit(X[1000:2000])
    np.testing.assert_array_equal(estimator.mixing_, reference.mixing_)


def test_fit_after_partial_fit_starts_afresh():
    X = _data().data
    streamed = _online(X[:2000], n_blocks=2)
    streamed.fit(X)
    fresh = SpreadICA(2, n_importance_samples=300, random_state=0).fit(X)
    np.testing.assert_array_equal(streamed.mixing_, fresh.mixing_)
    assert streamed.n_samples_seen_ == len(X)
    # partial_fit after fit starts a new stream.
    streamed.partial_fit(X[:1000])
    assert streamed.n_samples_seen_ == 1000


def test_float32_blocks_give_float32_attributes():
    X = _data().data.astype(np.float32)
    online = _online(X, n_blocks=2)
    assert online.mixing_.dtype == np.float32
    assert online.components_.dtype == np.float32
    assert online.transform(X[:3]).dtype == np.float32


# With noise_variance='diagonal' the EM of one block, started from the model
# so far, stops as frozen (rate 1.0008) and warns; the stream's estimate
# still meets the tolerances below.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("noise_variance", ["diagonal", 0.0])
def test_learned_and_fixed_noise_stream(noise_variance):
    data = make_ica(N_SAMPLES, 4, 2, noise_std=0.3, random_state=0)
    online = _online(data.data, noise_variance=noise_variance)
    assert mixing_error(online.mixing_, data.mixing) < 6 / math.sqrt(N_SAMPLES)
    if noise_variance == "diagonal":
        assert online.noise_variance_.shape == (4,)
        # gamma^2 = 0.09 from N rows: a relative error of a few 1 / sqrt(N / D).
        np.testing.assert_allclose(online.noise_variance_.mean(), 0.09, rtol=0.3)
    else:
        assert online.noise_variance_ == 0.0


# The block in other units meets a spread sized for the first block's: its EM
# is slow and may warn, which is not what this test is about.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_spread_and_evaluation_draws_stay_those_of_the_first_block():
    X = _data().data
    estimator = SpreadICA(2, n_importance_samples=300, random_state=0)
    estimator.partial_fit(X[:1000])
    spread_scale, seed = estimator.spread_scale_, estimator._evaluation_seed
    estimator.partial_fit(5 * X[1000:2000])
    assert estimator.spread_scale_ == spread_scale
    assert estimator._evaluation_seed == seed


def test_partial_fit_learns_the_source_densities():
    # Uniform (sub-Gaussian) sources, which the Laplace prior cannot separate.
    data = make_ica(N_SAMPLES, 4, 2, source="uniform", random_state=0)
    online = _online(data.data, source="adaptive")
    assert online.source_density_ is not None
    # fit's error here is 0.005 (0.3 / sqrt(N)); both are estimates from N rows.
    assert mixing_error(online.mixing_, data.mixing) < 2 / math.sqrt(N_SAMPLES)
    resumed = pickle.loads(pickle.dumps(online))
    rows = data.data[:5]
    np.testing.assert_array_equal(resumed.score_samples(rows), online.score_samples(rows))


def test_partial_fit_small_later_block_takes_one_e_step_with_a_warning():
    # Audit: after 1000 rows, EM on a 10-row block alone took A's entries
    # from 1.1 to 14, and at a step of 1% the mixing error went from 0.065 to
    # 0.44 without a warning. Such blocks now take one online EM step at the
    # model (measured: 0.0648 -> 0.0647) and say so.
    data = make_ica(2000, n_features=4, n_components=2, random_state=0)
    model = SpreadICA(2, random_state=0).partial_fit(data.data[:1000])
    before = mixing_error(model.mixing_, data.mixing)
    with pytest.warns(UserWarning, match="too small to be fitted alone"):
        model.partial_fit(data.data[1000:1010])
    assert abs(mixing_error(model.mixing_, data.mixing) - before) < 0.01
    assert model.n_samples_seen_ == 1010


def test_partial_fit_takes_numpy_scalars_for_the_same_parameters():
    # np.float64(0.09) is the 0.09 the stream kept: no "changed" error.
    X = make_ica(1400, n_features=4, n_components=2, random_state=0).data
    model = SpreadICA(2, noise_variance=0.09, random_state=0).partial_fit(X[:700])
    model.set_params(noise_variance=np.float64(0.09), n_components=np.int64(2))
    model.partial_fit(X[700:])
    assert model.n_samples_seen_ == 1400


@pytest.mark.parametrize(
    "change", [dict(n_components=3), dict(noise_variance=0.5), dict(source="laplace")]
)
def test_partial_fit_refuses_parameters_changed_mid_stream(change):
    # The stream keeps n_components, the prior and the noise of its first
    # block; a silent mismatch would leave get_params() describing another
    # model (IncrementalPCA raises on n_components too).
    X = make_ica(1400, n_features=4, n_components=2, random_state=0).data
    model = SpreadICA(2, random_state=0).partial_fit(X[:700])
    model.set_params(**change)
    with pytest.raises(ValueError, match=f"{next(iter(change))} changed since the first"):
        model.partial_fit(X[700:])
    # The model is left whole.
    assert model.n_samples_seen_ == 700
