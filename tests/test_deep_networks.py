"""DeltaVAE with the user's own encoder and generator networks."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from skspread import DeltaVAE

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

TINY = dict(n_components=2, n_epochs=2, batch_size=16, device="cpu", random_state=0)


class Encoder(nn.Module):
    """(batch, n_features) -> (mean, log_variance), each (batch, n_components)."""

    def __init__(self, n_features, n_components, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, width), nn.Tanh())
        self.mean = nn.Linear(width, n_components)
        self.log_var = nn.Linear(width, n_components)

    def forward(self, Y):
        features = self.body(Y)
        return self.mean(features), self.log_var(features)


class ImageGenerator(nn.Module):
    """(batch, n_components) -> images (batch, 1, 4, 4) by a transposed convolution."""

    def __init__(self, n_components, channels=4):
        super().__init__()
        self.dense = nn.Linear(n_components, channels * 2 * 2)
        self.channels = channels
        self.up = nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1)

    def forward(self, Z):
        return self.up(torch.relu(self.dense(Z)).reshape(-1, self.channels, 2, 2))


class OneOutputEncoder(Encoder):
    def forward(self, Y):
        return self.mean(self.body(Y))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 2)) @ rng.standard_normal((2, 16)) + 3.0


def _user_model(**params):
    return DeltaVAE(
        encoder=Encoder,
        encoder__n_features=16,
        encoder__n_components=2,
        encoder__width=6,
        generator=ImageGenerator,
        generator__n_components=2,
        image_shape=(4, 4),
        **{**TINY, **params},
    )


@pytest.mark.parametrize(
    "params", [dict(), dict(spread="laplace"), dict(spread=None),
               dict(learn_spread="covariance", spread_rank=2, n_epochs=3),
               dict(learn_spread="mean", n_epochs=3)], ids=str
)
def test_user_networks_train_and_serve_every_method(images, params):
    model = _user_model(**params).fit(images)
    assert isinstance(model.module_.encoder, Encoder)
    assert model.module_.encoder.body[0].out_features == 6  # encoder__width routed
    assert isinstance(model.module_.decoder, ImageGenerator)
    assert all(np.isfinite(entry["loss"]) for entry in model.history_)
    assert model.transform(images).shape == (64, 2)
    assert model.sample(3, random_state=0).shape == (3, 16)
    assert np.all(np.isfinite(model.score_samples(images)))
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.transform(images), model.transform(images))
    np.testing.assert_array_equal(
        loaded.sample(3, random_state=0), model.sample(3, random_state=0)
    )


def test_module_instances_are_copied_so_clones_and_refits_never_share_weights(images):
    encoder = Encoder(16, 2)
    before = [p.detach().clone() for p in encoder.parameters()]
    model = DeltaVAE(encoder=encoder, hidden_layer_sizes=(8,), **TINY)
    first = model.fit(images).transform(images)
    trained = model.module_.encoder
    assert trained is not encoder
    assert all(torch.equal(b, p) for b, p in zip(before, encoder.parameters()))
    # The refit starts from the given weights again: the same result.
    np.testing.assert_array_equal(model.fit(images).transform(images), first)
    assert model.module_.encoder is not trained
    twin = clone(model)
    assert twin.encoder is not encoder
    np.testing.assert_array_equal(twin.fit(images).transform(images), first)


def test_routed_parameters_follow_get_params_set_params_and_clone():
    model = _user_model()
    assert model.get_params()["encoder__width"] == 6
    model.set_params(encoder__width=5)
    assert clone(model).get_params()["encoder__width"] == 5
    assert "encoder__width=5" in repr(model)
    with pytest.raises(TypeError, match="unexpected keyword.*encoder__"):
        DeltaVAE(widht=3, hidden_layer_sizes=(8,), **TINY).fit(np.zeros((4, 2)))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(encoder=OneOutputEncoder(16, 2)),
         r"encoder OneOutputEncoder must map a batch of shape \(2, 16\).*tuple \(mean, "
         r"log_variance\).*\(2, 2\).*returned a tensor of shape \(2, 2\)"),
        (dict(encoder=Encoder(16, 3)), r"returned a tuple of a tensor of shape \(2, 3\)"),
        (dict(generator=ImageGenerator(2)),
         r"generator ImageGenerator must map.*\(2, 16\).*"
         r"returned a tensor of shape \(2, 1, 4, 4\)"),
        (dict(encoder=Encoder(15, 2)), r"encoder Encoder failed on a batch of shape \(2, 16\)"),
        (dict(encoder=Encoder, encoder__n_features=16), r"could not be built.*n_components"),
        (dict(encoder__width=3), r"encoder__\* parameters \['width'\] need a encoder class"),
        (dict(encoder=Encoder(16, 2), encoder__width=3), "pass the class instead"),
    ],
    ids=["one output", "wrong latent size", "images without image_shape", "wrong input",
         "missing argument", "routed without class", "routed to an instance"],
)
def test_broken_contract_is_a_clear_error_at_fit(images, params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DeltaVAE(hidden_layer_sizes=(8,), **TINY, **params).fit(images)
