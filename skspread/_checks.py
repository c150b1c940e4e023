"""Argument checks of the public functions; every error names the argument.

The estimators validate their data with scikit-learn's ``validate_data``;
the functions of :mod:`skspread.spread`, :mod:`skspread.divergence`,
:mod:`skspread.metrics` and :mod:`skspread.datasets` use these helpers, so
that a list is accepted like an array and an empty, complex, non-finite or
misshapen argument is refused with a message that says which argument is
wrong. A wrong *type* raises scikit-learn's ``InvalidParameterError``, which
is both a ``TypeError`` and a ``ValueError``, as scikit-learn's own public
functions do.

Torch tensors (the deep backend passes them to the kernels' log-densities)
are checked for dtype and shape only: testing their values would copy them
from the device, and synchronise it, at every training step.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state as _sklearn_check_random_state
from sklearn.utils._param_validation import InvalidParameterError

# Integer arrays are read as floats; anything else that NumPy can hold
# (booleans, complex numbers, strings, objects, dates) is not a real number.
_REAL_KINDS = "iuf"


def is_tensor(value):
    """Whether ``value`` is a torch tensor (without importing torch)."""
    return type(value).__module__.split(".")[0] == "torch"


# The scales a kernel accepts: within them its noise (tens of scales at
# most), the grids of its validity check (20 scales, 10 / scale) and the
# logarithm of its density are all ordinary floats.
SMALLEST_SCALE, LARGEST_SCALE = 1e-300, 1e300


def check_scale(value, name):
    """Return ``value`` as a float if it is a real number in [1e-300, 1e300]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise InvalidParameterError(
            f"{name} must be a finite float > 0, got {value!r} of type "
            f"{type(value).__name__}."
        )
    scale = float(value)
    if not (SMALLEST_SCALE <= scale <= LARGEST_SCALE):
        raise ValueError(
            f"{name} must be a finite float > 0 within [{SMALLEST_SCALE:g}, "
            f"{LARGEST_SCALE:g}], got {value!r}."
        )
    return scale


def check_random_state(random_state):
    """scikit-learn's ``check_random_state``, whose errors name ``random_state``."""
    try:
        return _sklearn_check_random_state(random_state)
    except ValueError as error:
        raise InvalidParameterError(
            f"random_state must be None, an int in [0, 2**32 - 1] or a "
            f"numpy.random.RandomState instance: {error}"
        ) from None


def check_shape(shape, name="shape"):
    """Return ``shape`` (an int or a sequence of ints >= 0) as a tuple."""
    dims = (shape,) if isinstance(shape, (Integral, np.integer)) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise InvalidParameterError(
            f"{name} must be a tuple of ints >= 0, got {shape!r}."
        ) from None
    for dim in dims:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (Integral, np.integer)):
            raise InvalidParameterError(f"{name} must be a tuple of ints >= 0, got {shape!r}.")
        if dim < 0:
            raise ValueError(f"{name} must be a tuple of ints >= 0, got {shape!r}.")
    return tuple(int(dim) for dim in dims)


def _check_ndim(ndim, name, expected, min_ndim):
    if expected is not None and ndim != expected:
        what = {0: "a scalar", 1: "a vector (1-D)", 2: "a matrix (2-D)"}.get(
            expected, f"{expected}-D"
        )
        raise ValueError(f"{name} must be {what}; got an array of {ndim} dimensions.")
    if ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s); got {ndim}.")


def check_real_array(value, name, *, ndim=None, min_ndim=0, dtype=np.float64):
    """Return ``value`` as a finite, non-empty, real NumPy array.

    Parameters
    ----------
    value : array-like
        A list, a scalar or an array.
    name : str
        The argument's name, for the messages.
    ndim : int or None
        Required number of dimensions (None: any).
    min_ndim : int
        Smallest number of dimensions accepted.
    dtype : dtype or None
        Result dtype; None keeps a floating dtype (float32 stays float32)
        and reads integers as float64.
    """
    if is_tensor(value):
        raise InvalidParameterError(
            f"{name} must be a NumPy array or a list here, not a torch tensor; "
            "call .cpu().numpy() on it first."
        )
    try:
        array = np.asarray(value)
    except ValueError as error:
        # A ragged list of lists.
        raise ValueError(f"{name} must be a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in _REAL_KINDS:
        kind = "complex" if array.dtype.kind == "c" else str(array.dtype)
        raise InvalidParameterError(
            f"{name} must hold real numbers; got an array of dtype {kind}."
        )
    _check_ndim(array.ndim, name, ndim, min_ndim)
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); it needs at least one value.")
    if dtype is None:
        dtype = array.dtype if array.dtype.kind == "f" else np.float64
    array = array.astype(dtype, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it holds NaN or infinity.")
    return array


def check_tensor(value, name, *, ndim=None, min_ndim=0):
    """Check a torch tensor's dtype and shape (its values are not read)."""
    if value.is_complex():
        raise InvalidParameterError(f"{name} must hold real numbers; got {value.dtype}.")
    _check_ndim(value.ndim, name, ndim, min_ndim)
    if value.numel() == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(value.shape)}); it needs at least one value."
        )
    return value


def check_operands(operands, *, ndim=None, min_ndim=0):
    """Check arguments that are all NumPy arrays (or lists) or all torch tensors.

    ``operands`` maps each argument's name to its value; the values come
    back in the same order, as float arrays (floating dtypes kept) or as the
    tensors themselves.
    """
    tensors = {name: is_tensor(value) for name, value in operands.items()}
    if any(tensors.values()) and not all(tensors.values()):
        names = ", ".join(operands)
        numpy_names = ", ".join(name for name, tensor in tensors.items() if not tensor)
        raise InvalidParameterError(
            f"{names} must be all torch tensors or all NumPy arrays; {numpy_names} "
            "is not a tensor while the others are."
        )
    if all(tensors.values()):
        return [
            check_tensor(value, name, ndim=ndim, min_ndim=min_ndim)
            for name, value in operands.items()
        ]
    return [
        check_real_array(value, name, ndim=ndim, min_ndim=min_ndim, dtype=None)
        for name, value in operands.items()
    ]


def check_broadcast(first, second, first_name, second_name):
    """Refuse two arrays (or tensors) whose shapes do not broadcast."""
    try:
        np.broadcast_shapes(tuple(first.shape), tuple(second.shape))
    except ValueError:
        raise ValueError(
            f"{first_name} of shape {tuple(first.shape)} and {second_name} of shape "
            f"{tuple(second.shape)} do not broadcast; they need the same last "
            "dimension (n_features)."
        ) from None


def check_finite_result(result, what, advice):
    """Refuse a NumPy result that overflowed (tensors are returned as they are)."""
    if not is_tensor(result) and not np.all(np.isfinite(result)):
        raise ValueError(f"{what} overflows float64: {advice}")
    return result


def check_variance(variance, spread):
    """Return a kernel's variance, refusing one outside the float64 range.

    The scale of a kernel may be any positive float, but its square
    overflows above about 1.3e154 and underflows to 0 below about 1e-162.
    """
    if not math.isfinite(variance) or variance == 0:
        raise ValueError(
            f"The variance of {spread!r} is outside the float64 range (its scale "
            "squared over- or underflows); use a scale between 1e-150 and 1e150, "
            "or rescale the data."
        )
    return variance


def power_of_two_unit(*magnitudes):
    """The power of two u with u <= m < 2 u for the largest m of ``magnitudes``.

    Dividing by a power of two is exact, so rescaling a problem by this unit
    to keep its squares in range changes no digit of the answer. 1.0 if all
    magnitudes are 0.
    """
    largest = max(float(m) for m in magnitudes)
    if largest == 0 or not math.isfinite(largest):
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)
