"""Unit-variance source distributions shared by ``make_ica`` and ``SpreadICA``."""

import math

import numpy as np

_LAPLACE_SCALE = 1.0 / math.sqrt(2.0)
_LOGISTIC_SCALE = math.sqrt(3.0) / math.pi
_UNIFORM_HALF_WIDTH = math.sqrt(3.0)

SOURCES = ("laplace", "logistic", "uniform")


def sample_sources(source, shape, rng):
    """Draw independent unit-variance sources of the named distribution."""
    if source == "laplace":
        return rng.laplace(0.0, _LAPLACE_SCALE, size=shape)
    if source == "logistic":
        return rng.logistic(0.0, _LOGISTIC_SCALE, size=shape)
    if source == "uniform":
        return rng.uniform(-_UNIFORM_HALF_WIDTH, _UNIFORM_HALF_WIDTH, size=shape)
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")


def source_log_density(source, Z):
    """Elementwise log-density of unit-variance sources at ``Z``."""
    if source == "laplace":
        return -np.abs(Z) / _LAPLACE_SCALE - math.log(2.0 * _LAPLACE_SCALE)
    if source == "logistic":
        u = np.abs(Z) / _LOGISTIC_SCALE
        return -u - 2.0 * np.log1p(np.exp(-u)) - math.log(_LOGISTIC_SCALE)
    if source == "uniform":
        inside = np.abs(Z) <= _UNIFORM_HALF_WIDTH
        return np.where(inside, -math.log(2.0 * _UNIFORM_HALF_WIDTH), -np.inf)
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
