"""The array namespace of an input: NumPy's, or torch's for a tensor (torch stays optional)."""

import numpy as np


def _namespace(x):
    """Return the module (numpy or torch) whose functions apply to ``x``."""
    if type(x).__module__.split(".")[0] == "torch":
        import torch

        return torch
    return np
