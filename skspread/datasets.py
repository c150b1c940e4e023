"""Synthetic data from the paper's models, and loaders for MNIST and Fashion-MNIST.

The image sets are read from their original IDX files in a data folder
(:func:`get_data_home`); files that are missing there are downloaded once
from the datasets' public mirrors and checked against their published md5.
"""

import gzip
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from numbers import Real
from os import PathLike
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params
from tqdm.auto import tqdm

from ._checks import check_finite_result, check_random_state, check_real_array
from ._sources import SOURCES, sample_sources

__all__ = ["get_data_home", "load_fashion_mnist", "load_mnist", "make_ica", "make_line"]


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

    The mixing matrix has entries uniform on {-1, +1}, drawn again until
    its columns are independent; the sources are independent with unit
    variance; the observation noise is N(0, noise_std^2 I). ``noise_std=0``
    is deterministic ICA.

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
    # A square sign matrix is singular often (4 x 4: about two draws in three),
    # and a mixing of lower rank has no unique sources: redraw it.
    while np.linalg.matrix_rank(mixing) < n_components:
        mixing = rng.choice([-1.0, 1.0], size=(n_features, n_components))
    sources = sample_sources(source, (n_samples, n_components), rng)
    data = sources @ mixing.T
    if noise_std > 0:
        with np.errstate(over="ignore"):
            data = data + noise_std * rng.standard_normal(data.shape)
        check_finite_result(data, "The noisy data", "noise_std is too large; rescale it.")
    return Bunch(data=data, mixing=mixing, sources=sources, noise_std=float(noise_std))


# The published IDX files and their md5 (the gzip files as the publishers
# distribute them; the same digests as torchvision's and Fashion-MNIST's own).
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

# Public mirrors, tried in order. The original MNIST site often refuses
# scripted downloads, so the copy that torchvision uses comes first.
_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
_DATA_HOME_VARIABLE = "SKSPREAD_DATA"
_DATA_URL_VARIABLE = "SKSPREAD_DATA_URL"
_DEFAULT_DATA_HOME = Path("~", "skspread_data")
_TIMEOUT_SECONDS = 60
_CHUNK_BYTES = 1 << 16


def _resolve_data_home(data_home):
    if data_home is None:
        data_home = os.environ.get(_DATA_HOME_VARIABLE, _DEFAULT_DATA_HOME)
    return Path(data_home).expanduser()


@validate_params({"data_home": [str, PathLike, None]}, prefer_skip_nested_validation=True)
def get_data_home(data_home=None):
    """Return the path of skspread's data folder, creating it if missing.

    The MNIST and Fashion-MNIST loaders keep their files there, each set in a
    subfolder named after it, so that they are downloaded only once.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder. By default the ``SKSPREAD_DATA`` environment variable,
        else ``~/skspread_data``.

    Returns
    -------
    data_home : str
        The path of the folder.

    Examples
    --------
    >>> import os, tempfile
    >>> from skspread.datasets import get_data_home
    >>> folder = get_data_home(os.path.join(tempfile.mkdtemp(), "skspread_data"))
    >>> os.path.isdir(folder)
    True
    """
    folder = _resolve_data_home(data_home)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def _file_urls(name, file):
    """Where to fetch ``file`` of the set ``name``, in the order to try.

    A base URL in ``SKSPREAD_DATA_URL`` replaces the mirrors; below it the
    files lie as in the data folder (``<base>/<name>/<file>``).
    """
    base = os.environ.get(_DATA_URL_VARIABLE)
    if base:
        return [f"{base.rstrip('/')}/{name}/{file}"]
    return [mirror + file for mirror in _MIRRORS[name]]


def _fetch(url, destination, expected_md5):
    """Stream ``url`` to ``destination``, which appears only whole and with its md5.

    The bytes go to a hidden temporary file in the same folder that replaces
    the destination (os.replace, atomic) once the md5 matches; on any failure,
    interruption included, the temporary file is removed.
    """
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
            size = response.headers.get("Content-Length")
            with open(partial, "wb") as out, tqdm(
                total=int(size) if size else None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"Downloading {destination.name}",
            ) as progress:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
        if digest.hexdigest() != expected_md5:
            raise OSError(
                f"the download has md5 {digest.hexdigest()}, expected {expected_md5} "
                "(corrupt or truncated); nothing was kept"
            )
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def _download(name, file, expected_md5, folder):
    """Fetch one file of the set ``name`` into ``folder``, trying each mirror."""
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in _file_urls(name, file):
        try:
            _fetch(url, folder / file, expected_md5)
            return
        # URLError (no network, HTTP errors) and timeouts are OSErrors;
        # http.client's errors (a cut connection) are not; ValueError is a
        # malformed SKSPREAD_DATA_URL.
        except (OSError, ValueError, http.client.HTTPException) as error:
            failures.append(f"{url}: {error}")
    raise OSError(
        f"Could not download the {name} file {file!r} into {str(folder)!r}. "
        + " ".join(f"Tried {failure}." for failure in failures)
        + " Check the network connection, or set SKSPREAD_DATA_URL to a mirror "
        f"that serves '{name}/{file}', or copy the original file into that folder "
        "yourself (data_home= or SKSPREAD_DATA chooses the folder)."
    )


def _dataset_folder(name, data_home, files):
    """The folder of the set: ``<data_home>/<name>``, or ``data_home`` itself
    when the files lie there directly (a folder that a user filled by hand)."""
    data_home = _resolve_data_home(data_home)
    nested = data_home / name
    if not nested.is_dir() and all((data_home / file).is_file() for file in files):
        return data_home
    return nested


def _read_idx(path, expected_md5, name):
    raw = path.read_bytes()
    digest = hashlib.md5(raw).hexdigest()
    if digest != expected_md5:
        raise OSError(
            f"The {name} file {str(path)!r} is corrupt or truncated: md5 {digest}, "
            f"expected {expected_md5}. Delete it (it is downloaded again) or replace "
            "it with the original file."
        )
    content = gzip.decompress(raw)
    magic = int.from_bytes(content[:4], "big")
    n_dims = magic & 0xFF
    shape = tuple(
        int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)
    )
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def _load_idx_dataset(name, subset, data_home, download_if_missing, return_X_y):
    prefix = "train" if subset == "train" else "t10k"
    images_file = f"{prefix}-images-idx3-ubyte.gz"
    labels_file = f"{prefix}-labels-idx1-ubyte.gz"
    folder = _dataset_folder(name, data_home, (images_file, labels_file))
    for file in (images_file, labels_file):
        path = folder / file
        if path.is_file():
            continue
        if not download_if_missing:
            raise FileNotFoundError(
                f"Missing {name} file {file!r}: looked for {str(path)!r}, and "
                "download_if_missing=False. Pass download_if_missing=True to fetch it, "
                "or point data_home (or the SKSPREAD_DATA environment variable) to "
                f"a folder that holds '{name}/{file}'."
            )
        _download(name, file, _IDX_FILES[name][file], folder)
    images = _read_idx(folder / images_file, _IDX_FILES[name][images_file], name)
    labels = _read_idx(folder / labels_file, _IDX_FILES[name][labels_file], name)
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


_LOADER_PARAMETERS = {
    "subset": [StrOptions({"train", "test"})],
    "data_home": [str, PathLike, None],
    "download_if_missing": ["boolean"],
    "return_X_y": ["boolean"],
}


@validate_params(_LOADER_PARAMETERS, prefer_skip_nested_validation=True)
def load_mnist(subset="train", *, data_home=None, download_if_missing=True, return_X_y=False):
    """Load the MNIST digits from the original IDX files.

    Parameters
    ----------
    subset : {'train', 'test'}, default='train'
        The 60000 training or the 10000 test images.
    data_home : str or path-like, default=None
        Folder that holds ``mnist/`` (or the subset's two ``.gz`` files
        themselves). By default the ``SKSPREAD_DATA`` environment variable,
        else ``~/skspread_data`` (see :func:`get_data_home`).
    download_if_missing : bool, default=True
        Download the subset's files that are missing from ``data_home``, from
        the public mirrors or, when the ``SKSPREAD_DATA_URL`` environment
        variable is set, from ``$SKSPREAD_DATA_URL/mnist/``; a progress bar
        shows on stderr. If False, a missing file raises FileNotFoundError.
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
        If a file is missing and ``download_if_missing=False``; the message
        names the file and where it was looked for.
    OSError
        If a download fails (the message names the URLs tried and the
        folder) or a file's md5 does not match the published original.

    Examples
    --------
    >>> from skspread.datasets import load_mnist
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> X.shape
    (10000, 784)
    """
    return _load_idx_dataset("mnist", subset, data_home, download_if_missing, return_X_y)


@validate_params(_LOADER_PARAMETERS, prefer_skip_nested_validation=True)
def load_fashion_mnist(
    subset="train", *, data_home=None, download_if_missing=True, return_X_y=False
):
    """Load Fashion-MNIST from the original IDX files.

    Parameters
    ----------
    subset : {'train', 'test'}, default='train'
        The 60000 training or the 10000 test images.
    data_home : str or path-like, default=None
        Folder that holds ``fashion-mnist/`` (or the subset's two ``.gz`` files
        themselves). By default the ``SKSPREAD_DATA`` environment variable,
        else ``~/skspread_data`` (see :func:`get_data_home`).
    download_if_missing : bool, default=True
        Download the subset's files that are missing from ``data_home``, from
        the public mirrors or, when the ``SKSPREAD_DATA_URL`` environment
        variable is set, from ``$SKSPREAD_DATA_URL/fashion-mnist/``; a progress bar
        shows on stderr. If False, a missing file raises FileNotFoundError.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch or tuple
        As :func:`load_mnist`, with the ten clothing classes as labels.

    Raises
    ------
    FileNotFoundError
        If a file is missing and ``download_if_missing=False``; the message
        names the file and where it was looked for.
    OSError
        If a download fails (the message names the URLs tried and the
        folder) or a file's md5 does not match the published original.

    Examples
    --------
    >>> from skspread.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist("test", return_X_y=True)
    >>> X.shape
    (10000, 784)
    """
    return _load_idx_dataset(
        "fashion-mnist", subset, data_home, download_if_missing, return_X_y
    )

