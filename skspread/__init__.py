"""skspread: spread-divergence estimators for implicit generative models.

The linear estimators need only NumPy and SciPy; :class:`DeltaVAE` needs
torch (``pip install skspread[deep]``) and is imported on first use.
"""

from ._factor_analysis import SpreadFactorAnalysis
from ._ica import SpreadICA
from ._version import __version__

__all__ = ["DeltaVAE", "SpreadFactorAnalysis", "SpreadICA", "__version__"]


def __getattr__(name):
    # DeltaVAE lives with torch code: import it on first use only.
    if name == "DeltaVAE":
        from .deep import DeltaVAE

        return DeltaVAE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
