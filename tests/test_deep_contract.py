"""DeltaVAE on the shared estimator base: units, clear errors, atomic refits."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skspread import DeltaVAE
from skspread.spread import GaussianSpread, LaplaceSpread

torch = pytest.importorskip("torch")

from skspread._testing import Trainer  # noqa: E402

TINY = dict(n_components=2, hidden_layer_sizes=(8,), n_epochs=2, batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((96, 2)) @ rng.standard_normal((2, 5)) + rng.uniform(
        -2, 2, size=5
    )


@pytest.mark.parametrize("spread", ["gaussian", "laplace", None])
@pytest.mark.parametrize("scale", [1e-6, 1e-3, 255.0, 1e3, 1e6])
def test_fit_in_other_units_is_the_scaled_fit(data, scale, spread):
    reference = DeltaVAE(spread=spread, random_state=0, **TINY).fit(data)
    scaled = DeltaVAE(spread=spread, random_state=0, **TINY).fit(scale * data)
    np.testing.assert_allclose(
        scaled.sample(5, random_state=1), scale * reference.sample(5, random_state=1),
        rtol=1e-4, atol=1e-5 * scale,
    )
    np.testing.assert_allclose(
        scaled.transform(scale * data), reference.transform(data), rtol=1e-4, atol=1e-5
    )
    n_features = data.shape[1]
    np.testing.assert_allclose(
        scaled.score_samples(scale * data),
        reference.score_samples(data) - n_features * np.log(scale),
        rtol=1e-5, atol=1e-4,
    )
    np.testing.assert_allclose(
        [entry["loss"] for entry in scaled.history_],
        [entry["loss"] + n_features * np.log(scale) for entry in reference.history_],
        rtol=1e-5, atol=1e-4,
    )
    assert scaled.noise_variance_ == pytest.approx(scale**2 * reference.noise_variance_)
    if spread is None:
        assert scaled.spread_ is None and scaled.spread_scale_ is None
    else:
        assert scaled.spread_scale_ == pytest.approx(scale * reference.spread_scale_)


def test_fitted_spread_attributes(data):
    auto = DeltaVAE(spread="laplace", random_state=0, **TINY).fit(data)
    rms_std = np.sqrt(np.mean(np.var(data, axis=0)))
    assert isinstance(auto.spread_, LaplaceSpread)
    # 'auto': the Laplace kernel of variance (rms_std / 2)^2.
    assert auto.spread_.variance == pytest.approx((0.5 * rms_std) ** 2)
    assert auto.noise_variance_ == 0.0
    given = DeltaVAE(spread=GaussianSpread(0.3), spread_scale=5.0, **TINY).fit(data)
    assert given.spread_ == GaussianSpread(0.3) and given.spread_scale_ == 0.3
    vae = DeltaVAE(spread=None, spread_scale=0.4, **TINY).fit(data)
    assert vae.spread_ is None and vae.spread_scale_ is None
    assert vae.noise_variance_ == pytest.approx(0.16)


@pytest.mark.parametrize(
    "n_samples, error", [(2.5, TypeError), ("3", TypeError), (0, ValueError), (-1, ValueError)]
)
def test_sample_takes_a_positive_int(data, n_samples, error):
    model = DeltaVAE(random_state=0, **TINY).fit(data)
    with pytest.raises(error, match="n_samples"):
        model.sample(n_samples)
    assert model.sample(np.int64(3)).shape == (3, 5)


def test_unfitted_feature_names_and_bad_hidden_sizes_are_clear_errors(data):
    with pytest.raises(NotFittedError):
        DeltaVAE(**TINY).get_feature_names_out()
    with pytest.raises(InvalidParameterError, match="'hidden_layer_sizes' parameter"):
        DeltaVAE(**{**TINY, "hidden_layer_sizes": ("a",)}).fit(data)
    with pytest.raises(InvalidParameterError, match="'hidden_layer_sizes' parameter"):
        DeltaVAE(**{**TINY, "hidden_layer_sizes": (8, 0)}).fit(data)
    model = DeltaVAE(random_state=0, **TINY).fit(data)
    assert list(model.get_feature_names_out()) == ["deltavae0", "deltavae1"]


def test_inverse_transform_checks_the_latent_columns(data):
    model = DeltaVAE(random_state=0, **TINY).fit(data)
    with pytest.raises(ValueError, match="expects n_components=2"):
        model.inverse_transform(np.zeros((3, 3)))


def test_non_finite_loss_stops_with_the_last_finite_epoch(data, monkeypatch):
    model_step = Trainer._model_step
    calls = []

    def poisoned_step(self, batch):
        calls.append(1)
        loss = model_step(self, batch)
        return float("nan") if len(calls) == 9 else loss  # in epoch 2 (6 batches each)

    monkeypatch.setattr(Trainer, "_model_step", poisoned_step)
    model = DeltaVAE(**{**TINY, "n_epochs": 3}, random_state=0)
    with pytest.raises(FloatingPointError, match="epoch 2.*learning_rate"):
        model.fit(data)
    assert model.n_iter_ == 1 and len(model.history_) == 1
    monkeypatch.setattr(Trainer, "_model_step", model_step)
    one_epoch = DeltaVAE(**{**TINY, "n_epochs": 1}, random_state=0).fit(data)
    # The state of the end of epoch 1, still usable.
    np.testing.assert_array_equal(model.transform(data), one_epoch.transform(data))
    assert np.all(np.isfinite(model.score_samples(data)))


def test_huge_learning_rate_is_a_clear_error_not_silent_nan(data):
    model = DeltaVAE(**{**TINY, "learning_rate": 1e10}, random_state=0)
    with pytest.raises(FloatingPointError, match="epoch .*learning_rate"):
        model.fit(data)
    assert np.all(np.isfinite(model.transform(data)))


def test_a_last_step_that_breaks_the_model_is_an_error_not_a_nan_model(data, monkeypatch):
    # Each batch's loss is checked before its step; the step after the last
    # check is checked at the end of the epoch.
    model_step = Trainer._model_step

    def breaking_step(self, batch):
        loss = model_step(self, batch)
        with torch.no_grad():
            for parameter in self.model.model_parameters():
                parameter.fill_(float("nan"))
        return loss

    monkeypatch.setattr(Trainer, "_model_step", breaking_step)
    model = DeltaVAE(**{**TINY, "n_epochs": 1, "batch_size": 96}, random_state=0)
    with pytest.raises(FloatingPointError, match="last step of epoch 1"):
        model.fit(data)
    assert model.n_iter_ == 0
    assert np.all(np.isfinite(model.score_samples(data)))


def test_partial_fit_in_other_units_warns(data, tmp_path):
    model = DeltaVAE(random_state=0, **TINY).partial_fit(data)
    for block in (30 * data, 30 * data[:1]):
        with pytest.warns(UserWarning, match="units of the first fit") as record:
            model.partial_fit(block)
        assert record[0].filename == __file__  # the caller's line
    memmap = np.lib.format.open_memmap(tmp_path / "rows.npy", mode="w+", shape=data.shape)
    memmap[:] = 30 * data
    with pytest.warns(UserWarning, match="units of the first fit"):
        model.partial_fit(memmap)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.partial_fit(data[:40])


def test_refit_that_raises_keeps_the_previous_fit(data):
    model = DeltaVAE(random_state=0, **TINY).fit(data)
    module, codes = model.module_, model.transform(data)
    with pytest.raises(ValueError, match="exceeds n_features"):
        model.set_params(learn_spread="covariance", spread_rank=10).fit(data[:, :3])
    assert model.module_ is module and model.n_features_in_ == 5
    np.testing.assert_array_equal(model.transform(data), codes)


def test_warm_refit_that_raises_mid_training_keeps_the_previous_weights(data, monkeypatch):
    model = DeltaVAE(random_state=0, warm_start=True, **TINY).fit(data)
    codes, history = model.transform(data), model.history_
    model_step = Trainer._model_step
    calls = []

    def failing_step(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a failure inside training")
        return model_step(self, batch)

    monkeypatch.setattr(Trainer, "_model_step", failing_step)
    with pytest.raises(RuntimeError, match="inside training"):
        model.fit(data)
    assert model.history_ is history and model.n_iter_ == 2
    np.testing.assert_array_equal(model.transform(data), codes)


def test_callbacks_that_are_not_callable_are_rejected_before_training(data):
    with pytest.raises(InvalidParameterError, match="callbacks.*list of callables"):
        DeltaVAE(callbacks=[1], random_state=0, **TINY).fit(data)
