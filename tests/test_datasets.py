"""Synthetic data of the paper's models (eq 7/10, section 4.1) and the IDX image readers."""

import contextlib
import functools
import http.server
import math
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from skspread.datasets import (
    get_data_home,
    load_fashion_mnist,
    load_mnist,
    make_ica,
    make_line,
)

N_STANDARD_ERRORS = 4.0

# Fourth moments E z^4 of the unit-variance sources: Laplace (kurtosis 6),
# logistic (excess kurtosis 6/5) and uniform (9/5).
SOURCE_FOURTH_MOMENT = {"laplace": 6.0, "logistic": 4.2, "uniform": 1.8}


def _assert_mean_and_variance(samples, mean, variance, fourth_central_moment):
    """Per column: mean within k sqrt(var / n), variance within k sqrt((mu_4 - var^2) / n)."""
    n = samples.shape[0]
    mean_se = math.sqrt(variance / n)
    # The sample variance about the known mean has variance (mu_4 - var^2) / n.
    variance_se = math.sqrt((fourth_central_moment - variance**2) / n)
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= N_STANDARD_ERRORS * mean_se)
    second = np.mean((samples - mean) ** 2, axis=0)
    assert np.all(np.abs(second - variance) <= N_STANDARD_ERRORS * variance_se)


# --- make_line (paper eq 7, 10) ---------------------------------------------------------


def test_make_line_eq7_shapes_and_points_on_the_line():
    line = make_line(500, [1.0, -2.0, 0.5], random_state=0)
    assert line.data.shape == (500, 3)
    assert line.theta.shape == (1, 3)
    assert line.latent.shape == (500, 1)
    assert np.array_equal(line.data, line.latent @ line.theta)
    assert np.linalg.matrix_rank(line.data) == 1


def test_make_line_subspace_shapes():
    theta = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
    subspace = make_line(300, theta, random_state=0)
    assert subspace.data.shape == (300, 4)
    assert subspace.latent.shape == (300, 2)
    assert np.linalg.matrix_rank(subspace.data) == 2


def test_make_line_reproducible_from_random_state():
    first = make_line(50, [1.0, 2.0], random_state=3)
    assert np.array_equal(first.data, make_line(50, [1.0, 2.0], random_state=3).data)
    rng_version = make_line(50, [1.0, 2.0], random_state=np.random.RandomState(3))
    assert np.array_equal(first.data, rng_version.data)
    assert not np.array_equal(first.data, make_line(50, [1.0, 2.0], random_state=4).data)


def test_make_line_moments_eq10():
    """z ~ N(0, 1) and E[x x^T] = theta theta^T, each within k standard errors.

    x_i x_j = z^2 theta_i theta_j has variance 2 theta_i^2 theta_j^2.
    """
    n = 20_000
    theta = np.array([1.0, -2.0, 0.5])
    line = make_line(n, theta, random_state=1)
    _assert_mean_and_variance(line.latent, 0.0, 1.0, 3.0)
    second_moment = line.data.T @ line.data / n
    standard_error = math.sqrt(2.0 / n) * np.abs(np.outer(theta, theta))
    assert np.all(
        np.abs(second_moment - np.outer(theta, theta)) <= N_STANDARD_ERRORS * standard_error
    )


@pytest.mark.parametrize(
    "n_samples, theta, message",
    [
        (0, [1.0], "n_samples"),
        (-3, [1.0], "n_samples"),
        (2.5, [1.0], "n_samples"),
        (np.nan, [1.0], "n_samples"),
        ("10", [1.0], "n_samples"),
        (10, [1.0, np.nan], "theta"),
        (10, [], "theta"),
        (10, np.ones((2, 2, 2)), "theta"),
    ],
)
def test_make_line_refuses_bad_arguments(n_samples, theta, message):
    with pytest.raises(ValueError, match=message):
        make_line(n_samples, theta)


# --- make_ica (paper section 4.1) ----------------------------------------------------------


def test_make_ica_shapes_and_model():
    ica = make_ica(200, n_features=5, n_components=3, random_state=0)
    assert ica.data.shape == (200, 5)
    assert ica.mixing.shape == (5, 3)
    assert ica.sources.shape == (200, 3)
    assert set(np.unique(ica.mixing)) <= {-1.0, 1.0}
    assert np.array_equal(ica.data, ica.sources @ ica.mixing.T)
    assert ica.noise_std == 0.0


def test_make_ica_mixing_has_independent_columns():
    # Square sign matrices are singular often (4 x 4: 4 of the first 6 seeds
    # drew one), and SpreadICA then refused the data for its rank.
    for seed in range(20):
        assert np.linalg.matrix_rank(make_ica(10, 4, 4, random_state=seed).mixing) == 4


@pytest.mark.parametrize("noise_std", [0.0, 0.3])
def test_make_ica_reproducible_from_random_state(noise_std):
    kwargs = dict(n_features=4, n_components=2, noise_std=noise_std)
    first = make_ica(100, random_state=5, **kwargs)
    again = make_ica(100, random_state=np.random.RandomState(5), **kwargs)
    other = make_ica(100, random_state=6, **kwargs)
    for key in ("data", "mixing", "sources"):
        assert np.array_equal(first[key], again[key])
    assert not np.array_equal(first.data, other.data)


@pytest.mark.parametrize("source", sorted(SOURCE_FOURTH_MOMENT))
def test_make_ica_sources_have_zero_mean_and_unit_variance(source):
    ica = make_ica(20_000, n_features=3, n_components=3, source=source, random_state=2)
    _assert_mean_and_variance(ica.sources, 0.0, 1.0, SOURCE_FOURTH_MOMENT[source])


def test_make_ica_sources_are_distinguishable():
    # The fourth moment tells the three families apart (guards against a shared sampler).
    n = 20_000
    for source, fourth in SOURCE_FOURTH_MOMENT.items():
        sources = make_ica(n, 1, 1, source=source, random_state=3).sources[:, 0]
        # Var z^4 = E z^8 - (E z^4)^2; E z^8 is 8! b^8 = 2520 for the unit-variance
        # Laplace, the largest of the three, so it bounds the standard error of all.
        standard_error = math.sqrt((2520.0 - fourth**2) / n)
        assert abs(np.mean(sources**4) - fourth) <= N_STANDARD_ERRORS * standard_error


def test_make_ica_noise_has_the_requested_std():
    n, gamma = 20_000, 0.4
    ica = make_ica(n, n_features=3, n_components=2, noise_std=gamma, random_state=4)
    noise = ica.data - ica.sources @ ica.mixing.T
    _assert_mean_and_variance(noise, 0.0, gamma**2, 3.0 * gamma**4)
    assert ica.noise_std == gamma


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_samples=100, n_features=2, n_components=3), "n_components <= n_features"),
        (dict(n_samples=100, n_features=2, n_components=0), "n_components"),
        (dict(n_samples=0, n_features=2, n_components=1), "n_samples"),
        (dict(n_samples=10.5, n_features=2, n_components=1), "n_samples"),
        (dict(n_samples=100, n_features=2.5, n_components=1), "n_features"),
        (dict(n_samples=100, n_features=2, n_components=1, noise_std=-0.1), "noise_std"),
        (dict(n_samples=100, n_features=2, n_components=1, noise_std=np.nan), "noise_std"),
        (dict(n_samples=100, n_features=2, n_components=1, noise_std="0.1"), "noise_std"),
        (dict(n_samples=100, n_features=2, n_components=1, source="gaussian"), "source"),
    ],
)
def test_make_ica_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_ica(**kwargs)


# --- MNIST and Fashion-MNIST readers ------------------------------------------------------

DATA_HOME = os.environ.get("SKSPREAD_DATA")
needs_data = pytest.mark.skipif(
    DATA_HOME is None
    or not all(Path(DATA_HOME, name).is_dir() for name in ("mnist", "fashion-mnist")),
    reason="the IDX files are not at hand: SKSPREAD_DATA (or ../shared/data beside "
    "the checkout) holds no mnist/ and fashion-mnist/ folders",
)

# Published class counts of the training sets.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
FASHION_TRAIN_COUNTS = [6000] * 10


@pytest.fixture(scope="module")
def mnist():
    return {subset: load_mnist(subset) for subset in ("train", "test")}


@pytest.fixture(scope="module")
def fashion_mnist():
    return {subset: load_fashion_mnist(subset) for subset in ("train", "test")}


def _check_image_set(bunch, n_samples):
    assert bunch.data.shape == (n_samples, 784)
    assert bunch.images.shape == (n_samples, 28, 28)
    assert bunch.target.shape == (n_samples,)
    assert bunch.data.dtype.kind == "f"
    assert bunch.data.min() == 0.0 and bunch.data.max() == 1.0
    assert set(np.unique(bunch.target)) == set(range(10))
    assert np.array_equal(bunch.images.reshape(n_samples, -1), bunch.data)


@needs_data
def test_load_mnist_train_and_test(mnist):
    _check_image_set(mnist["train"], 60_000)
    _check_image_set(mnist["test"], 10_000)
    assert np.bincount(mnist["train"].target).tolist() == MNIST_TRAIN_COUNTS
    # The first training digit of MNIST is a 5, the first test digit a 7.
    assert mnist["train"].target[0] == 5 and mnist["test"].target[0] == 7


@needs_data
def test_load_fashion_mnist_train_and_test(fashion_mnist):
    _check_image_set(fashion_mnist["train"], 60_000)
    _check_image_set(fashion_mnist["test"], 10_000)
    assert np.bincount(fashion_mnist["train"].target).tolist() == FASHION_TRAIN_COUNTS
    assert np.bincount(fashion_mnist["test"].target).tolist() == [1000] * 10


@needs_data
def test_load_mnist_return_x_y_and_data_home_match_the_bunch(mnist):
    X, y = load_mnist("test", data_home=DATA_HOME, return_X_y=True)
    assert np.array_equal(X, mnist["test"].data)
    assert np.array_equal(y, mnist["test"].target)
    # data_home may also be the folder that holds the files themselves.
    X_flat, _ = load_mnist("test", data_home=Path(DATA_HOME, "mnist"), return_X_y=True)
    assert np.array_equal(X_flat, X)


@needs_data
def test_load_mnist_and_fashion_mnist_differ(mnist, fashion_mnist):
    assert not np.array_equal(mnist["test"].data[:10], fashion_mnist["test"].data[:10])


def test_load_mnist_without_download_names_the_missing_file_and_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as error:
        load_mnist(data_home=missing, download_if_missing=False)
    assert str(missing / "mnist" / "train-images-idx3-ubyte.gz") in str(error.value)
    assert "SKSPREAD_DATA" in str(error.value)
    assert not missing.exists()


def test_get_data_home_is_the_argument_else_the_variable_else_the_home_folder(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKSPREAD_DATA", raising=False)
    assert get_data_home() == str(tmp_path / "home" / "skspread_data")
    monkeypatch.setenv("SKSPREAD_DATA", str(tmp_path / "variable"))
    assert get_data_home() == str(tmp_path / "variable")
    assert get_data_home(tmp_path / "argument") == str(tmp_path / "argument")
    for folder in ("home/skspread_data", "variable", "argument"):
        assert (tmp_path / folder).is_dir()
    assert get_data_home("~/data") == str(tmp_path / "home" / "data")


@needs_data
@pytest.mark.parametrize("loader, name", [(load_mnist, "mnist"), (load_fashion_mnist, "fashion-mnist")])
def test_loaders_refuse_missing_file(tmp_path, loader, name):
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(Path(DATA_HOME, name, "t10k-labels-idx1-ubyte.gz"), folder)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz") as error:
        loader("test", data_home=tmp_path, download_if_missing=False)
    assert str(folder / "t10k-images-idx3-ubyte.gz") in str(error.value)


@needs_data
@pytest.mark.parametrize("loader, name", [(load_mnist, "mnist"), (load_fashion_mnist, "fashion-mnist")])
def test_loaders_refuse_truncated_file(tmp_path, loader, name):
    folder = tmp_path / name
    folder.mkdir()
    for file in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(DATA_HOME, name, file), folder)
    truncated = folder / "t10k-images-idx3-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(OSError, match="corrupt or truncated") as error:
        loader("test", data_home=tmp_path)
    assert str(truncated) in str(error.value)
    assert "md5" in str(error.value)


def test_load_mnist_refuses_unknown_subset():
    with pytest.raises(ValueError, match="subset"):
        load_mnist("validation")


# --- Downloads, from HTTP servers on 127.0.0.1 (never the internet) ----------------------

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requested.append(self.path)
        super().do_GET()


class _CutHandler(_QuietHandler):
    """Announces the full length of a file, sends a tenth of it and hangs up."""

    def do_GET(self):
        type(self).requested.append(self.path)
        content = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content[: len(content) // 10])
        self.close_connection = True


@contextlib.contextmanager
def _serve(folder, handler=_QuietHandler):
    """An HTTP server on a free port of 127.0.0.1 that serves ``folder``; yields its URL."""
    handler = type(handler.__name__, (handler,), {"requested": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _leftovers(folder):
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


@needs_data
@pytest.mark.parametrize("loader, name", [(load_mnist, "mnist"), (load_fashion_mnist, "fashion-mnist")])
def test_loaders_download_the_missing_files_once_and_verify_them(
    tmp_path, monkeypatch, capsys, loader, name
):
    """The test files come from the server into data_home/<name>/, then from disk."""
    home = tmp_path / "home"
    with _serve(DATA_HOME) as (url, requested):
        monkeypatch.setenv("SKSPREAD_DATA_URL", url + "/")
        X, y = loader("test", data_home=home, return_X_y=True)
        assert sorted(requested) == sorted(f"/{name}/{file}" for file in TEST_FILES)
        assert "Downloading t10k-images-idx3-ubyte.gz" in capsys.readouterr().err
        X_again, _ = loader("test", data_home=home, return_X_y=True)
        assert len(requested) == 2
    assert _leftovers(home) == sorted(TEST_FILES)
    for file in TEST_FILES:
        assert (home / name / file).read_bytes() == Path(DATA_HOME, name, file).read_bytes()
    X_local, y_local = loader("test", data_home=DATA_HOME, return_X_y=True)
    assert np.array_equal(X, X_local) and np.array_equal(y, y_local)
    assert np.array_equal(X_again, X)


def _corrupt_mirror(folder):
    """A mirror whose MNIST test files are random bytes of plausible size."""
    (folder / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for file in TEST_FILES:
        (folder / "mnist" / file).write_bytes(rng.bytes(50_000))
    return folder


@pytest.mark.parametrize("handler", [_QuietHandler, _CutHandler], ids=["corrupt", "cut"])
def test_corrupt_or_cut_download_raises_and_leaves_nothing_on_disk(
    tmp_path, monkeypatch, handler
):
    home = tmp_path / "home"
    with _serve(_corrupt_mirror(tmp_path / "mirror"), handler) as (url, _):
        monkeypatch.setenv("SKSPREAD_DATA_URL", url)
        with pytest.raises(OSError, match="md5") as error:
            load_mnist("test", data_home=home)
    message = str(error.value)
    assert f"{url}/mnist/t10k-images-idx3-ubyte.gz" in message
    assert str(home / "mnist") in message and "nothing was kept" in message
    assert _leftovers(home) == []


def test_download_without_network_names_the_url_and_the_folder(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("SKSPREAD_DATA_URL", url)
    home = tmp_path / "home"
    with pytest.raises(OSError, match="Could not download") as error:
        load_fashion_mnist("test", data_home=home)
    message = str(error.value)
    assert f"{url}/fashion-mnist/t10k-images-idx3-ubyte.gz" in message
    assert str(home / "fashion-mnist") in message and "SKSPREAD_DATA_URL" in message
    assert _leftovers(home) == []


def test_download_if_missing_false_never_fetches(tmp_path, monkeypatch):
    with _serve(_corrupt_mirror(tmp_path / "mirror")) as (url, requested):
        monkeypatch.setenv("SKSPREAD_DATA_URL", url)
        with pytest.raises(FileNotFoundError):
            load_mnist("test", data_home=tmp_path / "home", download_if_missing=False)
    assert requested == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(download_if_missing="no"), "download_if_missing"),
        (dict(return_X_y=1.5), "return_X_y"),
        (dict(data_home=3), "data_home"),
    ],
)
def test_loaders_refuse_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_mnist("test", **kwargs)
