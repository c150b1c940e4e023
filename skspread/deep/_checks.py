"""Parameter checks of DeltaVAE that need no torch."""

from numbers import Integral

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


class CallableList(Options):
    """Constraint: a list (possibly empty) of callables, as ``callbacks`` takes.

    Checked with the other parameters, before training: a callback that is
    not callable would otherwise fail only after the first epoch.
    """

    def __init__(self):
        super().__init__(list, set())

    def is_satisfied_by(self, val):
        return isinstance(val, list) and all(callable(value) for value in val)

    def __str__(self):
        return "a list of callables"


def routed_params(params, prefix):
    """The parameters that start with ``prefix``, with the prefix removed."""
    return {
        name[len(prefix) :]: value for name, value in params.items() if name.startswith(prefix)
    }
