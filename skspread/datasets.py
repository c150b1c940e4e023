"""Synthetic data from the paper's models, and readers for MNIST-style IDX files.

Nothing here downloads: the image sets are read from a folder that the user
provides (``data_home``, else the ``SKSPREAD_DATA`` environment variable).
"""

import gzip
import hashlib
import os
from numbers import Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._checks import check_finite_result, check_real_array
from ._sources import SOURCES, sample_sources

__all__ = ["load_fashion_mnist", "load_mnist", "make_ica", "make_line"]


def _check_count(value, name, minimum=1):
    """Return ``value`` as an int; refuse non-integral values and values below ``minimum``."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, Real)
        or not np.isfinite(value)
        or int(value) != value
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def make_line(n_samples, theta, random_state=None):
    """Draw from the deterministic linear model x = theta^T z (paper eq 7, 10).

    With a vector ``theta`` the data lie on a line through the origin
    (z ~ N(0, 1)); with a matrix of shape (n_components, n_features) they
    span a subspace (z ~ N(0, I_K)). Either way the model has no density in
    R^D, so maximum likelihood is undefined without spread.

    Parameters
    ----------
    n_samples : int
        Number of points.
    theta : array-like of shape (n_features,) or (n_components, n_features)
        Direction of the line, or rows spanning the subspace.
    random_state : int, RandomState instance or None, default=None
        Seed of the latent draws.

    Returns
    -------
    data : Bunch
        ``data`` (n_samples, n_features), ``theta`` (n_components,
        n_features) and ``latent`` (n_samples, n_components).

    Examples
    --------
    >>> from skspread.datasets import make_line
    >>> line = make_line(100, [1.0, 2.0], random_state=0)
    >>> line.data.shape, line.theta.shape
    ((100, 2), (1, 2))
    """
    theta = np.atleast_2d(check_real_array(theta, "theta"))
    if theta.ndim != 2:
        raise ValueError("theta must be a finite, non-empty vector or matrix.")
    n_samples = _check_count(n_samples, "n_samples")
    rng = check_random_state(random_state)
    latent = rng.standard_normal((n_samples, theta.shape[0]))
    with np.errstate(over="ignore"):
        data = latent @ theta
    check_finite_result(data, "The data x = theta^T z", "theta is too large; rescale it.")
    return Bunch(data=data, theta=theta, latent=latent)


def make_ica(
    n_samples,
    n_features,
    n_components,
    noise_std=0.0,
    source="laplace",
    random_state=None,
):
    """Draw from the ICA model x = A z + noise of the paper's section 4.1.

    The mixing matrix has entries uniform on {-1, +1}; the sources are
    independent with unit variance; the observation noise is N(0,
    noise_std^2 I). ``noise_std=0`` is deterministic ICA.

    Parameters
    ----------
    n_samples : int
        Number of observations N.
    n_features : int
        Observed dimension D.
    n_components : int
        Number of sources K <= D.
    noise_std : float, default=0.0
        Standard deviation gamma of the observation noise.
    source : {'laplace', 'logistic', 'uniform'}, default='laplace'
        Distribution of the sources (each scaled to unit variance).
    random_state : int, RandomState instance or None, default=None
        Seed of the mixing matrix, sources and noise.

    Returns
    -------
    data : Bunch
        ``data`` (n_samples, n_features), ``mixing`` (n_features,
        n_components), ``sources`` (n_samples, n_components) and
        ``noise_std``.

    Examples
    --------
    >>> from skspread.datasets import make_ica
    >>> ica = make_ica(1000, n_features=4, n_components=2, random_state=0)
    >>> ica.data.shape, ica.mixing.shape, ica.sources.shape
    ((1000, 4), (4, 2), (1000, 2))
    """
    n_samples = _check_count(n_samples, "n_samples")
    n_features = _check_count(n_features, "n_features")
    n_components = _check_count(n_components, "n_components")
    if n_components > n_features:
        raise ValueError(
            f"Need 1 <= n_components <= n_features, got n_components={n_components} "
            f"and n_features={n_features}."
        )
    if (
        isinstance(noise_std, (bool, np.bool_))
        or not isinstance(noise_std, Real)
        or not np.isfinite(noise_std)
        or noise_std < 0
    ):
        raise ValueError(f"noise_std must be a finite float >= 0, got {noise_std!r}.")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
    rng = check_random_state(random_state)
    mixing = rng.choice([-1.0, 1.0], size=(n_features, n_components))
    sources = sample_sources(source, (n_samples, n_components), rng)
    data = sources @ mixing.T
    if noise_std > 0:
        with np.errstate(over="ignore"):
            data = data + noise_std * rng.standard_normal(data.shape)
        check_finite_result(data, "The noisy data", "noise_std is too large; rescale it.")
    return Bunch(data=data, mixing=mixing, sources=sources, noise_std=float(noise_std))


_IDX_FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

_HOW_TO_PROVIDE = (
    "Pass data_home=<folder> or set the SKSPREAD_DATA environment variable to a "
    "folder that holds '{name}/<file>' (or the files themselves), the original IDX "
    ".gz files from the dataset's publishers. skspread never downloads data."
)


def _dataset_folder(name, data_home):
    if data_home is None:
        data_home = os.environ.get("SKSPREAD_DATA")
    if data_home is None:
        raise FileNotFoundError(
            f"No folder given for the {name} files. " + _HOW_TO_PROVIDE.format(name=name)
        )
    data_home = Path(data_home).expanduser()
    nested = data_home / name
    folder = nested if nested.is_dir() else data_home
    if not folder.is_dir():
        raise FileNotFoundError(
            f"The data folder {str(data_home)!r} does not exist. "
            + _HOW_TO_PROVIDE.format(name=name)
        )
    return folder


def _read_idx(path, expected_md5, name):
    if not path.is_file():
        raise FileNotFoundError(
            f"Missing {name} file {path.name!r}: looked for {str(path)!r}. "
            + _HOW_TO_PROVIDE.format(name=name)
        )
    raw = path.read_bytes()
    digest = hashlib.md5(raw).hexdigest()
    if digest != expected_md5:
        raise OSError(
            f"The {name} file {str(path)!r} is corrupt or truncated: md5 {digest}, "
            f"expected {expected_md5}. Replace it with the original file. "
            + _HOW_TO_PROVIDE.format(name=name)
        )
    content = gzip.decompress(raw)
    magic = int.from_bytes(content[:4], "big")
    n_dims = magic & 0xFF
    shape = tuple(
        int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)
    )
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def _load_idx_dataset(name, subset, data_home, return_X_y):
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    folder = _dataset_folder(name, data_home)
    prefix = "train" if subset == "train" else "t10k"
    files = _IDX_FILES[name]
    images_file = f"{prefix}-images-idx3-ubyte.gz"
    labels_file = f"{prefix}-labels-idx1-ubyte.gz"
    images = _read_idx(folder / images_file, files[images_file], name)
    labels = _read_idx(folder / labels_file, files[labels_file], name)
    data = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    target = labels.astype(np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=data.reshape(images.shape),
        DESCR=f"{name} {subset} set: {len(data)} grey 28x28 images, pixels in [0, 1].",
    )


def load_mnist(subset="train", data_home=None, return_X_y=False):
    """Load the MNIST digits from the original IDX files.

    Parameters
    ----------
    subset : {'train', 'test'}, default='train'
        The 60000 training or the 10000 test images.
    data_home : str or path-like, default=None
        Folder that holds ``mnist/`` (or the four ``.gz`` files). Defaults to
        the ``SKSPREAD_DATA`` environment variable.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch or tuple
        ``data`` of shape (n_samples, 784), float32 pixels in [0, 1];
        ``target`` of shape (n_samples,), labels 0-9; ``images`` of shape
        (n_samples, 28, 28); ``DESCR``.

    Raises
    ------
    FileNotFoundError
        If no folder is given or a file is missing; the message names the
        file and where it was looked for.
    OSError
        If a file's md5 does not match the published original.

    Examples
    --------
    >>> from skspread.datasets import load_mnist
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> X.shape
    (10000, 784)
    """
    return _load_idx_dataset("mnist", subset, data_home, return_X_y)


def load_fashion_mnist(subset="train", data_home=None, return_X_y=False):
    """Load Fashion-MNIST from the original IDX files.

    Parameters
    ----------
    subset : {'train', 'test'}, default='train'
        The 60000 training or the 10000 test images.
    data_home : str or path-like, default=None
        Folder that holds ``fashion-mnist/`` (or the four ``.gz`` files).
        Defaults to the ``SKSPREAD_DATA`` environment variable.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch or tuple
        As :func:`load_mnist`, with the ten clothing classes as labels.

    Raises
    ------
    FileNotFoundError
        If no folder is given or a file is missing.
    OSError
        If a file's md5 does not match the published original.

    Examples
    --------
    >>> from skspread.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist("test", return_X_y=True)
    >>> X.shape
    (10000, 784)
    """
    return _load_idx_dataset("fashion-mnist", subset, data_home, return_X_y)
