"""Where the deep models' tensors live: the one module that knows about devices.

It imports torch (with an error that names the extra to install), turns the
``device`` parameter into a ``torch.device``, builds and moves the random
generators, and pickles torch state so that a model trained on a GPU loads
on a machine without one (on the CPU, with a warning). No other module of
the package mentions CUDA.
"""

import io
import re
import warnings

_DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def import_torch():
    """Return the torch module, or raise an ImportError naming the extra."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            'DeltaVAE needs torch, which is not installed: pip install "skspread[deep]"'
        ) from error
    return torch


def resolve_device(device):
    """Turn the ``device`` parameter into a torch.device, or fail clearly.

    Parameters
    ----------
    device : str
        'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.

    Returns
    -------
    device : torch.device
    """
    torch = import_torch()
    if not isinstance(device, str) or not _DEVICE_PATTERN.fullmatch(device):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}."
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine (or torch was built without it). Use device='cpu' or 'auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return resolved


def available_device(device, owner="This model"):
    """``device`` if this machine has it, else the CPU with a warning.

    Parameters
    ----------
    device : str or torch.device
        The device a model was saved from.
    owner : str, default="This model"
        How the warning names the model.

    Returns
    -------
    device : torch.device
    """
    torch = import_torch()
    device = torch.device(device)
    if device.type == "cuda" and (
        not torch.cuda.is_available()
        or (device.index is not None and device.index >= torch.cuda.device_count())
    ):
        warnings.warn(
            f"{owner} was trained on {str(device)!r}, which is not available here; "
            "it is loaded on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return device


def make_generator(device, seed):
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    torch = import_torch()
    return torch.Generator(device=device).manual_seed(int(seed))


def restore_generator(state, device, fallback_seed):
    """A generator on ``device`` continuing from ``state``.

    The state of a CUDA generator does not fit a CPU one (and back): when
    the device changed, the generator continues from ``fallback_seed``
    instead (training goes on, though not bit for bit as on the old device).
    """
    torch = import_torch()
    generator = torch.Generator(device=device)
    try:
        generator.set_state(state)
    except RuntimeError:
        generator.manual_seed(int(fallback_seed))
    return generator


def dumps(objects):
    """Serialise torch objects (modules, optimisers, tensors) to bytes.

    The tensors keep their device tag; :func:`loads` maps them.
    """
    torch = import_torch()
    buffer = io.BytesIO()
    torch.save(objects, buffer)
    return buffer.getvalue()


def loads(payload, device, owner="This model"):
    """Inverse of :func:`dumps`, on ``device`` or on the CPU if it is missing.

    Returns
    -------
    objects : object
        What :func:`dumps` saved, every tensor on the returned device.
    device : torch.device
        ``device``, or the CPU when this machine lacks it (with a warning).
    """
    torch = import_torch()
    device = available_device(device, owner)
    objects = torch.load(io.BytesIO(payload), map_location=device, weights_only=False)
    return objects, device


def gpu_count():
    """Number of CUDA devices this machine has (0 without CUDA)."""
    torch = import_torch()
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def process_group_backend(device):
    """The torch.distributed backend for a model on ``device``: NCCL on GPUs, else Gloo."""
    return "nccl" if import_torch().device(device).type == "cuda" else "gloo"


def data_parallel_device_ids(device):
    """``device_ids`` of DistributedDataParallel: the GPU's index, None on the CPU."""
    torch = import_torch()
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return [device.index if device.index is not None else torch.cuda.current_device()]


def use_gpu(index):
    """Make GPU ``index`` the current device of this process (one GPU per process)."""
    import_torch().cuda.set_device(index)
