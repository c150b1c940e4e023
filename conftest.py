"""Test configuration shared by the test suite and the doctests.

No test reaches the internet: downloads go to a closed port on this machine
unless a test serves the files itself from a local HTTP server.
"""

import os
from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"

# One BLAS / OpenMP / torch thread per test process unless the user chose
# otherwise: the tests' problems are small, and on a busy two-core machine the
# threads of a process spin against each other (a test that takes 25 s on one
# thread took 300 s with the default two at a load of 8). Set before numpy or
# torch start their thread pools; subprocesses (showcase, docs) inherit it.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
if not any(variable in os.environ for variable in _THREAD_VARIABLES):
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # pools that a plugin started before this file

# Where a project checkout keeps the data files (CI): beside the checkout.
# Point the loaders there unless the user chose another folder.
if "SKSPREAD_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["SKSPREAD_DATA"] = str(_SHARED_DATA)

# Port 9 (discard) on the loopback address: nothing listens, so a download
# that a test did not arrange fails at once instead of reaching a mirror.
os.environ["SKSPREAD_DATA_URL"] = "http://127.0.0.1:9"

_LOADER_DOCTESTS = {
    "skspread.datasets.load_mnist": "mnist",
    "skspread.datasets.load_fashion_mnist": "fashion-mnist",
}


def _has_test_images(name):
    home = Path(os.environ.get("SKSPREAD_DATA", "~/skspread_data")).expanduser()
    return any(
        (folder / "t10k-images-idx3-ubyte.gz").is_file()
        and (folder / "t10k-labels-idx1-ubyte.gz").is_file()
        for folder in (home / name, home)
    )


def pytest_collection_modifyitems(config, items):
    """Skip the loaders' doctests where the data is not at hand (a fresh clone):
    they would download it, and tests never download from the internet."""
    for item in items:
        name = _LOADER_DOCTESTS.get(item.name)
        if name is not None and not _has_test_images(name):
            item.add_marker(
                pytest.mark.skip(
                    reason=f"the {name} test files are not in SKSPREAD_DATA or "
                    "~/skspread_data (tests never download from the internet; "
                    "tests/test_datasets.py checks the download against a local server)"
                )
            )
