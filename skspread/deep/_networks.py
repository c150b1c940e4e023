"""Networks of the delta-VAE: plain ``nn.Module`` objects a user can replace.

An encoder maps a batch of flat points (n, D) to the mean and log-variance
(n, K) of a diagonal Gaussian q(z|y); a decoder maps latent codes (n, K) to
flat points (n, D). The residual map is the learned mean transformation
f(x) = x + h(x) of the spread, with Lip(h) < 1 so that f is injective.
"""

import copy
import math

import torch
from torch import nn
from torch.nn import functional


def _multilayer_perceptron(sizes):
    """Linear layers with ReLU between them (none after the last).

    The ReLUs work in place on the output of the layer before them, which
    nothing else holds: one tensor of activations per layer, not two.
    """
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if index > 0:
            layers.append(nn.ReLU(inplace=True))
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
            _multilayer_perceptron((n_features, *hidden_layer_sizes)), nn.ReLU(inplace=True)
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


class SpectralLinear(nn.Module):
    """Linear layer whose weight is divided by its largest singular value.

    The singular value comes from power iteration (Miyato et al., 2018):
    one step per forward pass in training mode, on vectors kept as
    buffers; in evaluation mode the stored vectors are used as they are.
    Written here rather than with torch's parametrizations, which a whole
    module cannot be pickled with.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    """

    def __init__(self, n_in, n_out):
        super().__init__()
        linear = nn.Linear(n_in, n_out)
        self.weight = linear.weight
        self.bias = linear.bias
        self.register_buffer("left", functional.normalize(torch.randn(n_out), dim=0))
        self.register_buffer("right", functional.normalize(torch.randn(n_in), dim=0))
        self._power_iteration(15)

    @torch.no_grad()
    def _power_iteration(self, n_iterations):
        weight = self.weight.detach()
        for _ in range(n_iterations):
            self.right.copy_(functional.normalize(weight.T @ self.left, dim=0, eps=1e-12))
            self.left.copy_(functional.normalize(weight @ self.right, dim=0, eps=1e-12))

    def normalised_weight(self):
        """The weight divided by its estimated spectral norm u^T W v."""
        if self.training:
            self._power_iteration(1)
        # Clones: a later forward pass updates the buffers in place, which
        # would invalidate this pass's graph before its backward pass.
        sigma = torch.dot(self.left.clone(), self.weight @ self.right.clone())
        return self.weight / sigma

    def forward(self, X):
        return functional.linear(X, self.normalised_weight(), self.bias)


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
            SpectralLinear(n_features, hidden_size),
            nn.ELU(),
            SpectralLinear(hidden_size, n_features),
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


def user_module(role, module, params):
    """The user's network for ``role`` ('encoder' or 'generator'), ready to train.

    A class is instantiated with ``params`` (the estimator's ``role__*``
    parameters); an instance is copied, so that clones and refits never
    share weights.
    """
    if isinstance(module, type) and issubclass(module, nn.Module):
        try:
            return module(**params)
        except TypeError as error:
            raise TypeError(
                f"{role}={module.__name__} could not be built from the {role}__* "
                f"parameters {params!r}: {error}"
            ) from error
    if isinstance(module, nn.Module):
        if params:
            raise ValueError(
                f"{role} is a module instance, so the {role}__* parameters "
                f"{sorted(params)} cannot be applied; pass the class instead."
            )
        return copy.deepcopy(module)
    raise TypeError(
        f"{role} must be None, a torch.nn.Module class or instance; got {module!r}."
    )


def _shape(value):
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {', '.join(_shape(item) for item in value)}"
    return f"a {type(value).__name__}"



def _try_on_zeros(module, role, shape, width_name, dtype):
    """``module`` applied to zeros of ``shape`` in evaluation mode, or a clear error."""
    training = module.training
    module.eval()
    try:
        return module(torch.zeros(shape, dtype=dtype))
    except Exception as error:
        raise ValueError(
            f"The {role} {type(module).__name__} failed on a batch of shape "
            f"{shape} = (batch, {width_name}): {type(error).__name__}: {error}"
        ) from error
    finally:
        module.train(training)

def check_network_contract(encoder, generator, n_features, n_components, image_shape=None):
    """Refuse networks that break the contract, naming the module and the shapes.

    The encoder maps a batch (batch, n_features) to (mean, log_variance),
    each (batch, n_components); the generator maps (batch, n_components) to
    (batch, n_features), or to images (batch, *image_shape) that the
    estimator flattens. Tried on a batch of two in evaluation mode, without
    gradients.
    """
    batch = 2
    parameter = next(iter([*encoder.parameters(), *generator.parameters()]), None)
    dtype = torch.float32 if parameter is None else parameter.dtype
    with torch.no_grad():
        encoded = _try_on_zeros(encoder, "encoder", (batch, n_features), "n_features", dtype)
        expected = (batch, n_components)
        if not (
            isinstance(encoded, (tuple, list))
            and len(encoded) == 2
            and all(isinstance(item, torch.Tensor) for item in encoded)
            and all(tuple(item.shape) == expected for item in encoded)
        ):
            raise ValueError(
                f"The encoder {type(encoder).__name__} must map a batch of shape "
                f"({batch}, {n_features}) = (batch, n_features) to a tuple (mean, "
                f"log_variance) of two tensors of shape {expected} = (batch, "
                f"n_components); it returned {_shape(encoded)}."
            )
        generated = _try_on_zeros(
            generator, "generator", (batch, n_components), "n_components", dtype
        )
    shape = tuple(generated.shape) if isinstance(generated, torch.Tensor) else None
    flat = shape == (batch, n_features)
    # Images (batch, *image_shape), with or without a channel axis of 1.
    images = (
        image_shape is not None
        and shape is not None
        and len(shape) > 2
        and shape[0] == batch
        and math.prod(shape[1:]) == n_features
    )
    if not (flat or images):
        raise ValueError(
            f"The generator {type(generator).__name__} must map a batch of shape "
            f"({batch}, {n_components}) = (batch, n_components) to a tensor of shape "
            f"({batch}, {n_features}) = (batch, n_features)"
            + (" or to images (batch, *image_shape)" if image_shape is not None else "")
            + f"; it returned {_shape(generated)}."
        )


def make_networks(
    architecture,
    hidden_layer_sizes,
    image_shape,
    n_features,
    n_components,
    encoder=None,
    generator=None,
    encoder_params=None,
    generator_params=None,
):
    """Encoder and generator: the user's where given, else the built-in ones.

    Parameters
    ----------
    architecture, hidden_layer_sizes, image_shape :
        As in :func:`build_networks`, for the networks the user did not give.
    n_features, n_components : int
    encoder, generator : None, nn.Module class or instance
    encoder_params, generator_params : dict or None
        Keyword arguments of the user's classes.

    Returns
    -------
    encoder, generator : nn.Module
        Checked against the contract (:func:`check_network_contract`).
    """
    encoder_params = encoder_params or {}
    generator_params = generator_params or {}
    for role, module, params in (
        ("encoder", encoder, encoder_params),
        ("generator", generator, generator_params),
    ):
        if module is None and params:
            raise ValueError(
                f"The {role}__* parameters {sorted(params)} need a {role} class; "
                f"got {role}=None (the built-in network)."
            )
    if encoder is None or generator is None:
        built_encoder, built_generator = build_networks(
            architecture, hidden_layer_sizes, image_shape, n_features, n_components
        )
    encoder = built_encoder if encoder is None else user_module("encoder", encoder, encoder_params)
    generator = (
        built_generator
        if generator is None
        else user_module("generator", generator, generator_params)
    )
    check_network_contract(encoder, generator, n_features, n_components, image_shape)
    return encoder, generator
