"""Checks shared by the estimators."""

from .spread import check_spread


def resolve_spread(spread, spread_scale, noise_variance):
    """Resolve an estimator's ``spread`` and refuse a model with no likelihood.

    ``spread_scale`` must already be a number (estimators resolve 'auto'
    first). A deterministic model (``noise_variance == 0``) without spread
    has no density off its manifold, so its likelihood does not exist.
    """
    if spread is None and isinstance(noise_variance, (int, float)) and noise_variance == 0:
        raise ValueError(
            "spread=None with noise_variance=0 has no likelihood: a deterministic "
            "model has no density off its manifold, so maximum likelihood is "
            "undefined. Use a spread ('gaussian' or 'laplace') for the consistent "
            "spread estimator, or a positive noise_variance for the noise-only "
            "baseline."
        )
    return check_spread(spread, spread_scale)
