"""skspread: spread-divergence estimators for implicit generative models.

The linear estimators need only NumPy and SciPy; :class:`DeltaVAE` needs
torch (``pip install skspread[deep]``) and is imported on first use.
"""

from ._factor_analysis import SpreadFactorAnalysis
from ._version import __version__

__all__ = ["SpreadFactorAnalysis", "__version__"]
