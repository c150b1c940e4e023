"""Parameter checks and data statistics of DeltaVAE that need no torch."""

import math
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Options

#: Prefixes of the parameters routed to the user's networks, as skorch
#: routes ``module__*``: ``encoder__width=8`` becomes ``width=8`` of the
#: encoder's class.
ROUTED_PREFIXES = ("encoder__", "generator__")


class PositiveIntegers(Options):
    """Constraint: a sequence (possibly empty) of positive integers.

    An ``Options`` so that scikit-learn's parameter validation accepts it;
    it has no list of options, only the test below.
    """

    def __init__(self):
        super().__init__(tuple, set())

    def is_satisfied_by(self, val):
        if isinstance(val, str):
            return False
        try:
            values = list(val)
        except TypeError:
            return False
        return all(
            isinstance(value, Integral) and not isinstance(value, bool) and value >= 1
            for value in values
        )

    def __str__(self):
        return "a tuple of positive int"


def data_scale(X):
    """Root-mean-square standard deviation of the features of ``X``.

    For constant data the root-mean-square of the values stands in (and 1
    for all zeros), so that the scale is always a statistic of the data. The
    data is divided by its largest magnitude first, so that the squares
    neither overflow nor underflow.
    """
    largest = float(np.max(np.abs(X))) if X.size else 0.0
    if largest == 0.0 or not math.isfinite(largest):
        return 1.0
    X = X / largest
    rms_std = math.sqrt(float(np.mean(np.var(X, axis=0))))
    if rms_std > 0:
        return largest * rms_std
    return largest * math.sqrt(float(np.mean(np.square(X))))


def routed_params(params, prefix):
    """The parameters that start with ``prefix``, with the prefix removed."""
    return {
        name[len(prefix) :]: value for name, value in params.items() if name.startswith(prefix)
    }
