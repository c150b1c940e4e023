"""The delta-VAE model: its networks and its loss (it never knows its trainer)."""

import math

import torch
from torch import nn


def gaussian_kl_to_standard(mean, log_var):
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per row."""
    return 0.5 * torch.sum(mean**2 + torch.exp(log_var) - 1.0 - log_var, dim=-1)


def standard_normal_log_prob(Z):
    return -0.5 * torch.sum(Z**2, dim=-1) - 0.5 * Z.shape[-1] * math.log(2 * math.pi)


def _batch_shape(shape, rows):
    """Shape of the noise of the whole batch that ``rows`` is a share of."""
    return tuple(shape) if rows is None else (rows[2], *shape[1:])


def _share(noise, rows):
    return noise if rows is None else noise[rows[0] : rows[1]]


class DeltaVAEModule(nn.Module):
    """Deterministic generator g(z), amortised encoder q(z|y) and the spread.

    Parameters
    ----------
    encoder : nn.Module
        Maps (n, D) to the mean and log-variance (n, K) of q(z|y).
    decoder : nn.Module
        The generator g: (n, K) -> (n, D).
    spread : SpreadModule or None
        Spread noise on data and model (the delta-VAE). None gives the
        standard VAE, whose model has Gaussian observation noise.
    observation : GaussianSpread or None
        The observation noise N(0, noise_variance I) of the standard VAE
        (used when ``spread`` is None).
    objective : {'exact', 'low_variance'}, default='exact'
        Decoder term of the delta-VAE: the closed-form expectation around the
        spread mean, or log k(y - f(g(z))) at the sampled y (see
        :meth:`negative_elbo`).
    """

    def __init__(self, encoder, decoder, spread=None, observation=None, objective="exact"):
        super().__init__()
        if (spread is None) == (observation is None):
            raise ValueError("Give exactly one of spread and observation noise.")
        if objective not in ("low_variance", "exact"):
            raise ValueError(f"Unknown objective {objective!r}.")
        self.objective = objective
        self.encoder = encoder
        self.decoder = decoder
        self.spread = spread
        self.observation = observation

    def model_parameters(self):
        """Parameters the model minimises over (encoder and generator)."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def spread_parameters(self):
        """Parameters psi of a learned spread, maximised over."""
        if self.spread is None:
            return []
        return list(self.spread.parameters())

    def generate(self, Z):
        """g(z) as flat rows (a generator may return images: they are flattened)."""
        generated = self.decoder(Z)
        return generated.reshape(generated.shape[0], -1)

    def spread_data(self, X, generator, rows=None):
        """Spread mean f(x) and one fresh spread sample y = f(x) + e."""
        if self.spread is None:
            return X, X
        Y_mean = self.spread.centre(X)
        noise = _share(self.spread.noise(_batch_shape(Y_mean.shape, rows), generator), rows)
        if (
            noise.dtype == Y_mean.dtype
            and noise.shape == Y_mean.shape
            and noise.is_contiguous()
        ):
            # y = e + f(x) in the memory of the noise, drawn for this call:
            # no third tensor of the batch's size. (A kernel's noise of
            # another dtype, or broadcast, takes the general sum.)
            return Y_mean, noise.add_(Y_mean)
        return Y_mean, Y_mean + noise

    def negative_elbo(self, X, generator, rows=None):
        """Training objective per row; the encoder sees a fresh spread sample y.

        'exact': the negative spread ELBO of y, an unbiased estimate of
        -E_y ELBO(y). 'low_variance' (the authors' code, paper section 4.2):
        the decoder term is the closed-form expectation over a spread sample
        around f(x), independent of the y the encoder saw. That is not the
        same objective: for the Gaussian, ||y - m||^2 = ||y_bar - m||^2
        + 2 e.(y_bar - m) + ||e||^2 with m = f(g(z)) depending on e through
        the encoder, so dropping the cross term removes the reward
        E[e.m] / sigma^2 for following the noise; the fit then shrinks like
        the noise-only MLE (see the tests).

        ``rows=(begin, end, n)`` says that ``X`` holds rows begin to end of
        a batch of n rows (a data-parallel process's share): the noise of
        all n rows is drawn and that share kept, so each row gets the noise
        it gets when one process takes the whole batch.
        """
        Y_mean, Y = self.spread_data(X, generator, rows)
        mean, log_var = self.encoder(Y)
        eps = torch.randn(
            _batch_shape(mean.shape, rows),
            generator=generator,
            device=mean.device,
            dtype=mean.dtype,
        )
        eps = _share(eps, rows)
        generated = self.generate(mean + torch.exp(0.5 * log_var) * eps)
        if self.spread is None:
            reconstruction = self.observation.log_prob(X, generated)
        elif self.objective == "exact":
            reconstruction = self.spread.log_prob(Y, generated)
        else:
            reconstruction = self.spread.expected_log_prob(Y_mean, generated)
        return gaussian_kl_to_standard(mean, log_var) - reconstruction

    def log_likelihood_bound(self, X, spread_noise, latent_noise):
        """Importance-weighted bound on the spread log-likelihood per row.

        Parameters
        ----------
        X : tensor of shape (n, D)
        spread_noise : tensor of shape (n, S, D) or (S, D), or None
            Spread draws of each row, or draws shared by every row (common
            random numbers); either way the score of a row does not depend
            on the other rows.
        latent_noise : tensor of shape (n, T, K) or (T, K)
            Standard-normal draws of each row (used for each of its spread
            copies) or shared by every row; T importance samples (T = 1
            gives the ELBO with a one-sample estimate of its KL).

        Returns
        -------
        bound : tensor of shape (n,)
            The mean over the S spread copies y of
            log (1/T) sum_t p(y|z_t) p(z_t) / q(z_t|y), z_t ~ q(z|y).
        """
        n_rows, n_features = X.shape
        if self.spread is None:
            Y = X[:, None, :]
        else:
            Y = self.spread.centre(X)[:, None, :] + spread_noise
        n_copies = Y.shape[1]
        # Row-major: the copies of a row are consecutive, as are their draws.
        Y = Y.reshape(-1, n_features)
        latent_noise = latent_noise.expand(n_rows, *latent_noise.shape[-2:])
        latent_noise = latent_noise.repeat_interleave(n_copies, dim=0)
        mean, log_var = self.encoder(Y)
        std = torch.exp(0.5 * log_var)
        Z = mean[:, None, :] + std[:, None, :] * latent_noise
        generated = self.generate(Z.reshape(-1, Z.shape[-1])).reshape(*Z.shape[:2], n_features)
        if self.spread is None:
            log_likelihood = self.observation.log_prob(Y[:, None, :], generated)
        else:
            log_likelihood = self.spread.log_prob(Y[:, None, :], generated)
        log_posterior = standard_normal_log_prob(latent_noise) - torch.sum(
            0.5 * log_var, dim=-1, keepdim=True
        )
        log_weights = log_likelihood + standard_normal_log_prob(Z) - log_posterior
        n_importance = latent_noise.shape[1]
        bound = torch.logsumexp(log_weights, dim=1) - math.log(n_importance)
        return bound.reshape(n_rows, n_copies).mean(dim=1)
