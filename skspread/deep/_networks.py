"""Networks of the delta-VAE: plain ``nn.Module`` objects a user can replace.

An encoder maps a batch of flat points (n, D) to the mean and log-variance
(n, K) of a diagonal Gaussian q(z|y); a decoder maps latent codes (n, K) to
flat points (n, D). The residual map is the learned mean transformation
f(x) = x + h(x) of the spread, with Lip(h) < 1 so that f is injective.
"""

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _multilayer_perceptron(sizes):
    """Linear layers with ReLU between them (none after the last)."""
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if index > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """Amortised diagonal Gaussian q(z|y) = N(mean(y), diag(exp(log_var(y)))).

    Parameters
    ----------
    body : nn.Module
        Maps (n, D) to features (n, n_body_features).
    n_body_features : int
        Width of the body's output.
    n_components : int
        Latent dimension K.
    """

    def __init__(self, body, n_body_features, n_components):
        super().__init__()
        self.body = body
        self.mean = nn.Linear(n_body_features, n_components)
        self.log_var = nn.Linear(n_body_features, n_components)

    def forward(self, Y):
        features = self.body(Y)
        return self.mean(features), self.log_var(features)


def make_mlp_encoder(n_features, hidden_layer_sizes, n_components):
    """Encoder with ReLU hidden layers; no hidden layer gives a linear encoder."""
    hidden_layer_sizes = tuple(hidden_layer_sizes)
    if hidden_layer_sizes:
        body = nn.Sequential(
            _multilayer_perceptron((n_features, *hidden_layer_sizes)), nn.ReLU()
        )
        width = hidden_layer_sizes[-1]
    else:
        body, width = nn.Identity(), n_features
    return GaussianEncoder(body, width, n_components)


def make_mlp_decoder(n_components, hidden_layer_sizes, n_features):
    """Generator g(z): the encoder's hidden layers in reverse, linear output."""
    sizes = (n_components, *reversed(tuple(hidden_layer_sizes)), n_features)
    return _multilayer_perceptron(sizes)


def _channels_height_width(image_shape):
    if len(image_shape) == 2:
        return (1, *image_shape)
    return tuple(image_shape)


class _ConvFeatures(nn.Module):
    """Two stride-2 convolutions: (n, C*H*W) -> (n, 64 * H/4 * W/4)."""

    def __init__(self, image_shape):
        super().__init__()
        self.image_shape = _channels_height_width(image_shape)
        channels = self.image_shape[0]
        self.layers = nn.Sequential(
            nn.Conv2d(channels, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )

    def forward(self, Y):
        return self.layers(Y.reshape(-1, *self.image_shape))


class ConvDecoder(nn.Module):
    """Generator mirroring the convolutional encoder, flat linear output."""

    def __init__(self, n_components, image_shape, hidden_size=256):
        super().__init__()
        self.image_shape = _channels_height_width(image_shape)
        channels, height, width = self.image_shape
        self.grid = (64, height // 4, width // 4)
        self.layers = nn.Sequential(
            nn.Linear(n_components, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, math.prod(self.grid)),
            nn.ReLU(),
            nn.Unflatten(1, self.grid),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 4, stride=2, padding=1),
            nn.Flatten(),
        )

    def forward(self, Z):
        return self.layers(Z)


def make_conv_encoder(image_shape, n_components, hidden_size=256):
    """Convolutional encoder for images whose height and width divide by 4."""
    channels, height, width = _channels_height_width(image_shape)
    n_conv_features = 64 * (height // 4) * (width // 4)
    body = nn.Sequential(
        _ConvFeatures(image_shape),
        nn.Linear(n_conv_features, hidden_size),
        nn.ReLU(),
    )
    return GaussianEncoder(body, hidden_size, n_components)


class ResidualMap(nn.Module):
    """Injective map f(x) = x + h(x) with Lip(h) < 1 (invertible residual block).

    h(x) = c * sigmoid(a) * h0(x), where every linear layer of h0 is
    spectrally normalised (largest singular value 1) and ELU is 1-Lipschitz,
    so Lip(h) <= c * sigmoid(a) < c < 1. Then f is injective:
    ||f(x) - f(x')|| >= (1 - Lip(h)) ||x - x'||. The gain starts small
    (sigmoid(a) ~ 0.02) so that the spread starts near the identity map.

    Parameters
    ----------
    n_features : int
        Dimension D of the data.
    hidden_size : int, default=256
        Width of the hidden layer of h0.
    lipschitz_coefficient : float, default=0.9
        Bound c on Lip(h); below 1 leaves room for the power-iteration
        estimate of the spectral norm to undershoot.
    """

    def __init__(self, n_features, hidden_size=256, lipschitz_coefficient=0.9):
        super().__init__()
        if not 0 < lipschitz_coefficient < 1:
            raise ValueError("lipschitz_coefficient must lie in (0, 1).")
        self.lipschitz_coefficient = lipschitz_coefficient
        self.residual = nn.Sequential(
            spectral_norm(nn.Linear(n_features, hidden_size)),
            nn.ELU(),
            spectral_norm(nn.Linear(hidden_size, n_features)),
        )
        self.gain_logit = nn.Parameter(torch.tensor(-4.0))

    def lipschitz_bound(self):
        """Upper bound on Lip(h) implied by the normalisation, as a float."""
        return self.lipschitz_coefficient * torch.sigmoid(self.gain_logit.detach()).item()

    def forward(self, X):
        gain = self.lipschitz_coefficient * torch.sigmoid(self.gain_logit)
        return X + gain * self.residual(X)


def build_networks(architecture, hidden_layer_sizes, image_shape, n_features, n_components):
    """Encoder and generator of one of the built-in architectures.

    Parameters
    ----------
    architecture : {'mlp', 'conv', 'linear'}
    hidden_layer_sizes : tuple of int
    image_shape : tuple of int or None
        Needed by 'conv': its product is ``n_features`` and its height and
        width divide by 4.
    n_features, n_components : int

    Returns
    -------
    encoder, generator : nn.Module
    """
    hidden = tuple(int(width) for width in hidden_layer_sizes)
    if architecture == "linear":
        hidden = ()
    if architecture != "conv":
        return (
            make_mlp_encoder(n_features, hidden, n_components),
            make_mlp_decoder(n_components, hidden, n_features),
        )
    if (
        image_shape is None
        or len(image_shape) not in (2, 3)
        or math.prod(image_shape) != n_features
        or image_shape[-1] % 4
        or image_shape[-2] % 4
    ):
        raise ValueError(
            "architecture='conv' needs image_shape=(height, width) or "
            "(channels, height, width) whose product is n_features="
            f"{n_features} and whose height and width divide by 4; "
            f"got image_shape={image_shape!r}."
        )
    width = hidden[0] if hidden else 256
    return (
        make_conv_encoder(image_shape, n_components, width),
        ConvDecoder(n_components, image_shape, width),
    )
