"""skspread: spread-divergence estimators for implicit generative models.

The linear estimators need only NumPy and SciPy; :class:`DeltaVAE` needs
torch (``pip install skspread[deep]``). Each estimator is imported on first
use.
"""

import importlib

from ._version import __version__

# Where each estimator lives. Importing them lazily (PEP 562) keeps what one
# estimator needs out of a program that uses another: SpreadICA starts from
# scikit-learn's FastICA, whose import brings much of scikit-learn
# (decomposition, linear_model, metrics, model_selection, svm), which a
# DeltaVAE program does not otherwise load.
_LOCATIONS = {
    "DeltaVAE": "skspread.deep",
    "SpreadFactorAnalysis": "skspread._factor_analysis",
    "SpreadICA": "skspread._ica",
}

__all__ = ["DeltaVAE", "SpreadFactorAnalysis", "SpreadICA", "__version__"]


def __getattr__(name):
    if name not in _LOCATIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LOCATIONS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
