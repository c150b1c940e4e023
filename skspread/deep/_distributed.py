"""Data-parallel DeltaVAE: torch.distributed process groups and ``fit_distributed``.

Inside an initialised process group (a script started by ``torchrun``, or
:func:`fit_distributed`), :meth:`DeltaVAE.fit <skspread.DeltaVAE.fit>` trains
data-parallel: every process draws the same batch order and the same noise
(their generators share the seed of rank 0), reads only its share of each
batch, and ``DistributedDataParallel`` averages the gradients, weighted so
that they are the gradients of the whole batch. Every process so takes the
steps a single process would take with the same global batch, and ends with
the same weights.
"""

import contextlib
import hashlib
import inspect
import os
import pickle
import socket
import tempfile

import numpy as np

from ._data import _file_position
from ._device import (
    data_parallel_device_ids,
    gpu_count,
    import_torch,
    process_group_backend,
    resolve_device,
    use_gpu,
)

__all__ = ["fit_distributed"]


def in_process_group():
    """True inside an initialised torch.distributed process group."""
    torch = import_torch()
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def batch_share(n_rows, rank, world_size):
    """Rows ``begin`` to ``end`` of an ``n_rows`` batch that process ``rank`` takes.

    Consecutive shares whose sizes differ by at most one row (a share may be
    empty when the batch has fewer rows than processes).
    """
    base, extra = divmod(n_rows, world_size)
    begin = rank * base + min(rank, extra)
    return begin, begin + base + (rank < extra)


def _share_loss_module(model, world_size):
    """The loss of a process's share as a module's forward pass, for DDP to wrap.

    The share's summed negative ELBO s, weighted by P / n (P processes, n
    rows in the batch): DistributedDataParallel averages gradients over the
    processes, so they become the gradients of the batch's mean loss
    whatever the sizes of the shares. A zero parameter c adds c * s
    (detached) to the loss, which changes neither its value nor the other
    gradients; c's gradient, P s / n, averaged over the processes is the
    batch's mean loss, which so reaches every process in the gradients'
    all-reduce instead of a second one.
    """
    torch = import_torch()

    class ShareLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            anchor = next(iter(model.parameters()))
            self.loss_carrier = torch.nn.Parameter(
                torch.zeros((), device=anchor.device, dtype=anchor.dtype)
            )

        def forward(self, batch, generator, rows):
            summed = self.model.negative_elbo(batch, generator, rows).sum()
            weighted = summed * (world_size / rows[2])
            return weighted + self.loss_carrier * weighted.detach()

    return ShareLoss()


class DataParallel:
    """Splits each batch across the processes of the group (the trainer's hook).

    Parameters
    ----------
    model : DeltaVAEModule
        Already on the process's device.
    device : torch.device
    """

    def __init__(self, model, device):
        torch = import_torch()
        distributed = torch.distributed
        self.rank = distributed.get_rank()
        self.world_size = distributed.get_world_size()
        device_ids = data_parallel_device_ids(device)
        self.share_loss = _share_loss_module(model, self.world_size)
        # Broadcasts rank 0's weights to every process. The buffers (the
        # power iterations of spectral normalisation) follow from the
        # weights, so they stay equal without a broadcast at every step.
        parallel = torch.nn.parallel.DistributedDataParallel
        no_buffer_sync = (
            {"forward_sync_buffers": False}  # the newer name
            if "forward_sync_buffers" in inspect.signature(parallel).parameters
            else {"broadcast_buffers": False}
        )
        self.network = parallel(self.share_loss, device_ids=device_ids, **no_buffer_sync)
        self.device = device
        self._rows = None

    def rows(self, X, indices):
        """This process's share of the batch ``indices`` (remembered for the loss)."""
        n_rows = len(indices)
        begin, end = batch_share(n_rows, self.rank, self.world_size)
        self._rows = (begin, end, n_rows)
        return X[indices[begin:end]]

    def batch_loss(self, batch, generator):
        """This share's loss, weighted so that the averaged gradients are the batch's."""
        self.share_loss.loss_carrier.grad = None
        return self.network(batch, generator, self._rows)

    def everywhere(self, flag):
        """Whether ``flag`` holds in every process of the group (one all-reduce)."""
        torch = import_torch()
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
        return bool(value.item() > 0.0)

    def loss_value(self):
        """The batch's mean loss, after ``backward``: the same in every process.

        It arrives with the gradients (see ``_share_loss_module``), so all
        the processes see the same value and stop together on a non-finite
        one.
        """
        return self.share_loss.loss_carrier.grad.item()


@contextlib.contextmanager
def data_parallel(estimator, n_rows, n_epochs):
    """Train ``estimator`` data-parallel inside a process group; a no-op outside one.

    Yields the process's rank (0 outside a group). All processes take rank
    0's weights (DistributedDataParallel), batch and noise generator state
    and evaluation seed, so that they start alike even without a
    ``random_state``. Processes that would train on different data or for a
    different number of steps (which would leave them waiting for each
    other, or silently apart) all raise a ValueError first.
    """
    if not in_process_group():
        yield 0
        return
    torch = import_torch()
    trainer = estimator._trainer
    mean_digest = hashlib.sha256(np.ascontiguousarray(estimator.mean_).tobytes()).hexdigest()
    signature = {
        "rows": n_rows,
        "features": estimator.n_features_in_,
        "epochs": n_epochs,
        "batch_size": trainer.batch_size,
        "data_scale_": float(estimator.data_scale_),
        "mean_ (digest)": mean_digest[:12],
    }
    gathered = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(
        gathered, (signature, trainer.generator.get_state(), estimator._evaluation_seed)
    )
    differing = sorted(
        name for name in signature if len({str(entry[0][name]) for entry in gathered}) > 1
    )
    if differing:
        values = {name: [entry[0][name] for entry in gathered] for name in differing}
        raise ValueError(
            f"The processes of the data-parallel fit differ in {', '.join(differing)} "
            f"(by rank: {values}). Every process must call fit with the same data "
            "and parameters."
        )
    trainer.generator.set_state(gathered[0][1])
    estimator._evaluation_seed = gathered[0][2]
    trainer.data_parallel = DataParallel(trainer.model, trainer.device)
    try:
        yield torch.distributed.get_rank()
    finally:
        del trainer.data_parallel


class _MemmapFile:
    """A C-ordered shared memmap, sent to processes by its file, not its values."""

    def __init__(self, X):
        self.filename = X.filename
        self.dtype = X.dtype
        self.shape = X.shape
        self.position = _file_position(X)

    def open(self):
        return np.memmap(
            self.filename, dtype=self.dtype, mode="r", offset=self.position, shape=self.shape
        )


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fit_in_process(rank, n_processes, port, backend, task_path, result_path):
    """One process of :func:`fit_distributed`: join the group, fit, rank 0 reports."""
    torch = import_torch()
    with open(task_path, "rb") as file:
        estimator, X, n_threads = pickle.load(file)
    if isinstance(X, _MemmapFile):
        X = X.open()
    torch.set_num_threads(n_threads)
    if backend == "nccl":
        use_gpu(rank)
    torch.distributed.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=n_processes
    )
    try:
        try:
            estimator.fit(X)
            outcome = ("fitted", None)
        except FloatingPointError as error:
            # The estimator keeps its last finite epoch (as fit does).
            outcome = ("diverged", str(error))
        if rank == 0:
            with open(result_path, "wb") as file:
                pickle.dump((outcome, estimator), file)
        # Leave together: a rank that tears its group down while the other
        # still talks to it can abort the other's gloo threads.
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def fit_distributed(estimator, X, n_processes=2, *, backend=None):
    """Fit a DeltaVAE data-parallel in ``n_processes`` processes on this machine.

    The processes form a torch.distributed group on a free local port of
    127.0.0.1 (gloo on the CPU, NCCL on GPUs, one GPU per process), each
    runs ``estimator.fit(X)`` on its share of every batch (see
    :ref:`scaling_out`), and the estimator fitted in process 0 (all end
    with the same weights) is put back into ``estimator``. The result is the
    fit of one process with the same batches, up to rounding.

    Parameters
    ----------
    estimator : DeltaVAE
        Unfitted, or fitted with ``warm_start=True`` to continue.
    X : array-like of shape (n_samples, n_features), numpy.memmap or torch Dataset
        Training data. Every process reads the whole of it: a C-ordered
        ``numpy.memmap`` (mode 'r' or 'r+') is sent as its file name and
        reopened read-only in each process; anything else is pickled to
        every process (a Dataset should hold a path, not the data).
    n_processes : int, default=2
        Number of processes; at most the number of GPUs for a model on a GPU.
    backend : {'gloo', 'nccl'} or None, default=None
        None: NCCL when the estimator's device is a GPU, gloo otherwise.

    Returns
    -------
    estimator : DeltaVAE
        The same estimator, fitted.

    Raises
    ------
    FloatingPointError
        If the loss became non-finite; the estimator keeps the state of the
        last finite epoch, as with :meth:`~skspread.DeltaVAE.fit`.
    RuntimeError
        If a process failed; the message holds its traceback.

    Examples
    --------
    Not run in the doctests (starting two processes takes tens of seconds);
    a script that calls it must guard its code with
    ``if __name__ == "__main__":``, as the processes are spawned.

    >>> from sklearn.datasets import load_digits
    >>> from skspread import DeltaVAE
    >>> from skspread.deep import fit_distributed
    >>> X = load_digits().data[:256] / 16
    >>> vae = DeltaVAE(n_components=2, hidden_layer_sizes=(16,), n_epochs=1,
    ...                device="cpu", random_state=0)
    >>> fit_distributed(vae, X, n_processes=2).transform(X).shape  # doctest: +SKIP
    (256, 2)
    """
    from ._delta_vae import DeltaVAE

    torch = import_torch()
    if not isinstance(estimator, DeltaVAE):
        raise TypeError(
            f"fit_distributed fits a DeltaVAE; got {type(estimator).__name__}. "
            "SpreadFactorAnalysis scales out with partial_fit or dask instead."
        )
    if not isinstance(n_processes, (int, np.integer)) or isinstance(n_processes, bool):
        raise TypeError(f"n_processes must be a positive int, got {n_processes!r}.")
    if n_processes < 1:
        raise ValueError(f"n_processes must be a positive int, got {n_processes!r}.")
    if in_process_group():
        raise RuntimeError(
            "fit_distributed starts its own process group; inside one (torchrun), "
            "call estimator.fit(X) instead."
        )
    device = resolve_device(estimator.device)
    if backend is None:
        backend = process_group_backend(device)
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo', 'nccl' or None, got {backend!r}.")
    if backend == "nccl" and n_processes > gpu_count():
        raise ValueError(
            f"n_processes={n_processes} exceeds the {gpu_count()} GPU(s) "
            "of this machine: NCCL needs one GPU per process. Use fewer processes "
            "or device='cpu'."
        )
    if isinstance(X, np.memmap) and _file_position(X) is not None:
        X = _MemmapFile(X)
    # The processes share the cores.
    n_threads = max(1, torch.get_num_threads() // n_processes)
    with tempfile.TemporaryDirectory(prefix="skspread-ddp-") as folder:
        task_path = os.path.join(folder, "task.pkl")
        result_path = os.path.join(folder, "result.pkl")
        with open(task_path, "wb") as file:
            pickle.dump((estimator, X, n_threads), file)
        try:
            torch.multiprocessing.spawn(
                _fit_in_process,
                args=(n_processes, _free_port(), backend, task_path, result_path),
                nprocs=n_processes,
                join=True,
            )
        except Exception as error:
            raise RuntimeError(
                f"fit_distributed: a training process failed:\n{error}"
            ) from None
        with open(result_path, "rb") as file:
            (status, message), fitted = pickle.load(file)
    vars(estimator).clear()
    vars(estimator).update(vars(fitted))
    if status == "diverged":
        raise FloatingPointError(message)
    return estimator
