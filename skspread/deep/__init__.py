"""Deep implicit generative models on a torch backend.

torch is imported only when a model is fitted or loaded, so importing this
subpackage works without it (``pip install "skspread[deep]"`` to fit).
"""

from ._callbacks import Checkpoint
from ._delta_vae import DeltaVAE
from ._distributed import fit_distributed

__all__ = ["Checkpoint", "DeltaVAE", "fit_distributed"]
