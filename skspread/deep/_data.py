"""Where DeltaVAE's training rows come from: an array, a numpy.memmap or a torch Dataset.

An in-memory array is validated by scikit-learn and moved to the device
whole. A ``numpy.memmap`` or a torch ``Dataset`` is never copied whole: its
shape and dtype are checked, the standardisation statistics (``mean_`` and
``data_scale_``) come from one streaming pass over row blocks, and the
trainer reads only the rows of each batch (:class:`StandardisedRows`). The
same block statistics serve the in-memory array, so that a fit on a memmap
is the fit on the array it holds, bit for bit.
"""

import copy
import math
import mmap
import os
import sys

import numpy as np

from .._moments import merge_moments

# Rows per block of the streaming statistics: about 1 MB of float64 values
# (the pass holds a block, its float64 copy and its deviations at a time).
_BLOCK_BYTES = 2**20
# Float64 values standardised at a time when a batch is read: 1 MB.
_CHUNK_BYTES = 2**20
# Rows checked up front when a partial_fit skips the statistics pass.
_N_CHECKED_ROWS = 1000
# Beyond these magnitudes squares of float64 values could overflow or
# underflow: the moments are then computed on the data over its largest
# magnitude (a second pass).
_SAFE_MAGNITUDES = (1e-100, 1e100)


def is_out_of_core(X):
    """True for data read batch by batch: a ``numpy.memmap`` or a torch ``Dataset``."""
    if isinstance(X, np.memmap):
        return True
    torch = sys.modules.get("torch")  # a Dataset exists only if torch was imported
    return torch is not None and isinstance(X, torch.utils.data.Dataset)


def is_dataset(X):
    """True for a torch ``Dataset`` (a ``numpy.memmap`` is an array to the outputs)."""
    return is_out_of_core(X) and not isinstance(X, np.memmap)


def by_blocks(method, X):
    """``method`` (an estimator's output on an array of rows) over a Dataset, block by block."""
    return np.concatenate([method(block) for _, block in RowSource(X).blocks()])


class RowSource:
    """Rows of a ``numpy.memmap`` or a torch ``Dataset``, read on demand.

    Parameters
    ----------
    X : numpy.memmap of shape (n_samples, n_features) or torch Dataset
        A Dataset's items are rows (tensors or arrays of n_features numbers,
        or of any shape, flattened) or tuples whose first element is the row
        (the ``(x, y)`` of a labelled dataset).
    """

    def __init__(self, X):
        self.data = X
        self.is_memmap = isinstance(X, np.memmap)
        if self.is_memmap:
            if X.ndim != 2:
                raise ValueError(
                    f"Expected a 2D memmap of shape (n_samples, n_features), got "
                    f"shape {X.shape}."
                )
            self.n_samples, self.n_features = X.shape
            self.dtype = X.dtype
        else:
            if not hasattr(X, "__len__"):
                raise TypeError(
                    f"DeltaVAE reads batches of rows by index; the torch {type(X).__name__} "
                    "given as X has no length (an IterableDataset?). Give a map-style "
                    "Dataset (with __len__ and __getitem__) or a numpy.memmap."
                )
            self.n_samples = len(X)
            first = self._dataset_rows([0]) if self.n_samples else np.empty((1, 0))
            self.n_features = first.shape[1]
            self.dtype = first.dtype
        if self.n_samples < 1 or self.n_features < 1:
            raise ValueError(
                f"Found array with {self.n_samples} sample(s) and {self.n_features} "
                "feature(s) while a minimum of 1 is required by DeltaVAE."
            )
        if not (np.issubdtype(self.dtype, np.floating) or np.issubdtype(self.dtype, np.integer)):
            raise ValueError(
                f"DeltaVAE reads real numbers; X has dtype {self.dtype}. Store the "
                "data as float32, float64 or integers."
            )
        self._file_position = _file_position(X) if self.is_memmap else None
        # Row numbers of a view of the source (None: all rows).
        self.row_numbers = None

    @property
    def shape(self):
        return (self.n_samples, self.n_features)

    def __len__(self):
        return self.n_samples

    def __getitem__(self, indices):
        """A view of rows ``indices`` (a validation split); nothing is read."""
        subset = copy.copy(self)
        subset.row_numbers = self._row_numbers(np.asarray(indices, dtype=np.int64))
        subset.n_samples = len(subset.row_numbers)
        return subset

    def _row_numbers(self, indices):
        return indices if self.row_numbers is None else self.row_numbers[indices]

    def _dataset_rows(self, indices):
        rows = []
        for index in indices:
            item = self.data[int(index)]
            if isinstance(item, (tuple, list)):
                item = item[0]
            if hasattr(item, "detach"):  # a torch tensor
                item = item.detach().cpu().numpy()
            rows.append(np.asarray(item).reshape(-1))
        try:
            return np.stack(rows)
        except ValueError as error:
            raise ValueError(
                "The rows of the Dataset given as X must all have the same number "
                f"of values: {error}"
            ) from error

    def rows(self, indices):
        """Rows ``indices`` (in that order) as a float64 array."""
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices, kind="stable")
        rows = np.empty((len(indices), self.n_features), dtype=np.float64)
        rows[order] = self.rows_in_file_order(indices[order])
        return rows

    def rows_in_file_order(self, indices, out=None):
        """Rows ``indices`` (increasing row numbers) in the source's dtype.

        A memmap's rows are read in the file's order, each with one
        ``os.preadv``, into ``out`` (an array of shape (len(indices),
        n_features) and the source's dtype, returned) or a new array.
        """
        indices = self._row_numbers(indices)
        if not self.is_memmap or self._file_position is None:
            if self.is_memmap:
                rows = np.asarray(self.data[indices])
                self._release()
            else:
                rows = self._dataset_rows(indices)
                if rows.shape[1] != self.n_features:
                    raise ValueError(
                        f"Dataset rows have {rows.shape[1]} values where the first row "
                        f"had {self.n_features}."
                    )
            if out is None:
                return rows
            out[...] = rows
            return out
        if out is None:
            out = np.empty((len(indices), self.n_features), dtype=self.dtype)
        row_bytes = self.n_features * self.dtype.itemsize
        with open(self.data.filename, "rb", buffering=0) as file:
            for slot, index in enumerate(indices):
                self._read_into(file, out[slot], self._file_position + int(index) * row_bytes)
        return out

    def blocks(self):
        """Consecutive ``(first row, block)`` pairs covering the data, blocks in float64."""
        yield from _blocks(self.n_samples, self.n_features, self.rows_between)

    def rows_between(self, begin, end):
        """Rows ``begin`` to ``end`` (excluded) as a float64 array."""
        if not self.is_memmap or self.row_numbers is not None:
            return self.rows(np.arange(begin, end))
        if self._file_position is None:
            block = np.asarray(self.data[begin:end], dtype=np.float64)
            self._release()
            return block
        raw = np.empty((end - begin, self.n_features), dtype=self.dtype)
        row_bytes = self.n_features * self.dtype.itemsize
        with open(self.data.filename, "rb", buffering=0) as file:
            self._read_into(file, raw, self._file_position + begin * row_bytes)
        return raw.astype(np.float64)

    @staticmethod
    def _read_into(file, array, position):
        view = memoryview(array.reshape(-1).view(np.uint8))
        while len(view):
            n_read = os.preadv(file.fileno(), [view], position)
            if n_read == 0:
                raise ValueError(f"The file behind the memmap X ended at byte {position}.")
            view, position = view[n_read:], position + n_read

    def _release(self):
        """Drop the pages that reading through the mapping brought into this process.

        Only for shared mappings, whose pages stay in the file cache: a
        copy-on-write mapping (mode 'c') would lose the changes made to it.
        """
        mapping = getattr(self.data, "_mmap", None)
        if mapping is not None and self.data.mode != "c" and hasattr(mapping, "madvise"):
            mapping.madvise(mmap.MADV_DONTNEED)

    def check_sample(self, random_state):
        """Check that a sample of rows (the first, the last and random ones) is finite."""
        n_checked = min(self.n_samples, _N_CHECKED_ROWS)
        indices = np.unique(
            np.concatenate(
                [[0, self.n_samples - 1], random_state.randint(self.n_samples, size=n_checked)]
            )
        )
        check_finite(self.rows(indices), indices)


def _file_position(X):
    """Byte position in its file of the first value of the memmap ``X``, or None.

    Rows are then read from the file with ``os.preadv`` rather than through
    the mapping: pages faulted in through a mapping count in the process's
    resident memory, in chunks the kernel chooses (up to whole large pages
    around each row). That needs C-ordered rows of a shared mapping; a
    copy-on-write memmap (mode 'c') is read through its mapping, which holds
    its private changes.
    """
    mapping = getattr(X, "_mmap", None)
    if (
        mapping is None
        or X.mode == "c"
        or not X.flags.c_contiguous
        or not isinstance(getattr(X, "filename", None), str)
    ):
        return None
    mapping_start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
    mapped = np.frombuffer(mapping, dtype=np.uint8)
    return mapping_start + X.ctypes.data - mapped.ctypes.data


def _blocks(n_samples, n_features, read):
    block_rows = max(1, _BLOCK_BYTES // (8 * n_features))
    for begin in range(0, n_samples, block_rows):
        yield begin, read(begin, min(begin + block_rows, n_samples))


def check_finite(rows, row_numbers):
    """Raise a ValueError naming the first row of X that has a NaN or infinity."""
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        first = int(np.asarray(row_numbers)[np.argmin(finite)])
        raise ValueError(
            f"Input X contains NaN or infinity (row {first}). DeltaVAE needs "
            "finite data: remove or impute those rows."
        )


def feature_statistics(X):
    """Per-feature mean and the data scale of ``X``, in one pass over row blocks.

    The data scale is the root-mean-square standard deviation of the
    features, or for constant data the root-mean-square of the values (1 for
    all zeros), so that it is always a statistic of the data. Block moments
    are merged with Chan, Golub and LeVeque's update in float64. Beyond
    magnitudes where squares could overflow, the moments are taken again on
    the data over its largest magnitude.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or RowSource

    Returns
    -------
    mean : ndarray of shape (n_features,)
    scale : float
    """
    if isinstance(X, RowSource):
        n_features = X.n_features

        def blocks(divisor):
            for begin, block in X.blocks():
                check_finite(block, np.arange(begin, begin + len(block)))
                yield block / divisor if divisor != 1.0 else block
    else:
        n_features = X.shape[1]

        def read(begin, end):
            return np.asarray(X[begin:end], dtype=np.float64)

        def blocks(divisor):
            for _, block in _blocks(X.shape[0], n_features, read):
                yield block / divisor if divisor != 1.0 else block

    mean, variance, largest = _moments(blocks(1.0), n_features)
    if largest == 0.0:
        return mean, 1.0
    divisor = 1.0
    if not _SAFE_MAGNITUDES[0] <= largest <= _SAFE_MAGNITUDES[1]:
        divisor = largest
        _, variance, _ = _moments(blocks(divisor), n_features)
    rms_std = math.sqrt(float(np.mean(variance)))
    if rms_std > 0:
        return mean, divisor * rms_std
    return mean, largest * math.sqrt(float(np.mean(np.square(mean / largest))))


def _moments(blocks, n_features):
    """Mean, population variance per feature and largest magnitude of the blocks."""
    moments = (0, np.zeros(n_features), np.zeros(n_features))
    largest = 0.0
    for block in blocks:
        block_mean = block.mean(axis=0)
        # In place: one temporary the size of the block (it may be a view of
        # the caller's array, which stays untouched).
        deviations = block - block_mean
        block_scatter = np.square(deviations, out=deviations).sum(axis=0)
        del deviations
        largest = max(largest, float(block.max()), -float(block.min()))
        moments = merge_moments(moments, (block.shape[0], block_mean, block_scatter))
    count, mean, scatter = moments
    return mean, scatter / count, largest


class StandardisedRows:
    """The trainer's view of out-of-core data: batches of standardised rows.

    Indexing with a tensor of row numbers reads those rows from the source,
    checks that they are finite, standardises them as the in-memory path
    does ((x - mean) / scale in float64, then rounded to float32) and returns
    a float32 tensor on the device.
    """

    def __init__(self, source, mean, scale, device):
        self.source = source
        self.mean = mean
        self.scale = scale
        self.device = device
        self.shape = source.shape
        # Rows read and standardised at a time, through two buffers kept
        # from batch to batch (raw rows, and the same in float64): a batch
        # costs its float32 tensor and these, not a raw copy of its own.
        self._chunk_rows = max(1, _CHUNK_BYTES // (8 * source.n_features))
        self._raw = self._float64 = None

    def __len__(self):
        return self.source.n_samples

    def __getitem__(self, indices):
        import torch

        indices = indices.cpu().numpy() if hasattr(indices, "cpu") else indices
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices, kind="stable")
        in_file_order = indices[order]
        if self._raw is None:
            shape = (self._chunk_rows, self.source.n_features)
            self._raw = np.empty(shape, dtype=self.source.dtype)
            self._float64 = np.empty(shape, dtype=np.float64)
        batch = torch.empty((len(indices), self.source.n_features), dtype=torch.float32)
        standardised = batch.numpy()
        for begin in range(0, len(indices), self._chunk_rows):
            rows = in_file_order[begin : begin + self._chunk_rows]
            raw = self.source.rows_in_file_order(rows, out=self._raw[: len(rows)])
            check_finite(raw, rows)
            chunk = self._float64[: len(rows)]
            chunk[...] = raw
            chunk -= self.mean
            chunk /= self.scale
            standardised[order[begin : begin + self._chunk_rows]] = chunk
        return batch.to(self.device)
