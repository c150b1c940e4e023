"""DeltaVAE on out-of-core data: a numpy.memmap or a torch Dataset, read batch by batch."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from skspread import DeltaVAE

torch = pytest.importorskip("torch")

TINY = dict(
    n_components=2, hidden_layer_sizes=(8,), n_epochs=2, batch_size=32, device="cpu", random_state=0
)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300] / 16.0


def _memmap(path, X, mode="r", offset=0):
    """``X`` written to ``path`` after ``offset`` bytes of header, opened as a memmap."""
    with open(path, "wb") as file:
        file.write(b"\0" * offset)
        file.write(np.ascontiguousarray(X).tobytes())
    return np.memmap(path, dtype=X.dtype, mode=mode, offset=offset, shape=X.shape)


class _RowsDataset(torch.utils.data.Dataset):
    """A labelled Dataset: items are (row tensor, label)."""

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return torch.as_tensor(self.X[index]), 0


def _same_fit(first, second, X):
    assert_array_equal([e["loss"] for e in first.history_], [e["loss"] for e in second.history_])
    assert_array_equal(first.mean_, second.mean_)
    assert first.data_scale_ == second.data_scale_
    assert first.spread_scale_ == second.spread_scale_
    assert_array_equal(first.transform(X), second.transform(X))
    assert_array_equal(first.score_samples(X), second.score_samples(X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_memmap_fit_and_partial_fit_equal_the_in_memory_fit(digits, tmp_path, dtype):
    X = digits.astype(dtype)
    mapped = _memmap(tmp_path / "X.dat", X)
    in_memory, out_of_core = DeltaVAE(**TINY).fit(X), DeltaVAE(**TINY).fit(mapped)
    assert out_of_core.n_features_in_ == X.shape[1]
    assert not hasattr(out_of_core, "feature_names_in_")
    _same_fit(in_memory, out_of_core, X)
    _same_fit(in_memory.partial_fit(X), out_of_core.partial_fit(mapped), X)


def test_view_of_memmap_after_header_and_integer_pixels(digits, tmp_path):
    # uint8 pixels behind a 100-byte header, and a slice of rows of it.
    pixels = np.round(digits * 16).astype(np.uint8)
    mapped = _memmap(tmp_path / "pixels.dat", pixels, offset=100)
    reference = DeltaVAE(**TINY).fit(pixels[50:250].astype(np.float64))
    _same_fit(reference, DeltaVAE(**TINY).fit(mapped[50:250]), pixels[50:250].astype(float))


def test_copy_on_write_memmap_is_read_with_its_changes(digits, tmp_path):
    mapped = _memmap(tmp_path / "X.dat", digits, mode="c")
    mapped[:10] = 0.5  # private changes, not in the file
    changed = digits.copy()
    changed[:10] = 0.5
    _same_fit(DeltaVAE(**TINY).fit(changed), DeltaVAE(**TINY).fit(mapped), changed)


def test_torch_dataset_of_labelled_rows_equals_the_array_fit(digits):
    _same_fit(DeltaVAE(**TINY).fit(digits), DeltaVAE(**TINY).fit(_RowsDataset(digits)), digits)


def test_outputs_of_a_torch_dataset_equal_those_of_the_array(digits):
    model = DeltaVAE(**TINY).fit(digits)
    rows = _RowsDataset(digits)
    np.testing.assert_array_equal(model.transform(rows), model.transform(digits))
    np.testing.assert_array_equal(model.score_samples(rows), model.score_samples(digits))
    assert model.score(rows) == model.score(digits)


def test_non_finite_rows_are_named(digits, tmp_path):
    X = digits.copy()
    X[123, 5] = np.nan
    with pytest.raises(ValueError, match="row 123"):
        DeltaVAE(**TINY).fit(_memmap(tmp_path / "nan.dat", X))
    model = DeltaVAE(**TINY).fit(digits)
    weights = [p.detach().clone() for p in model.module_.parameters()]
    X[:, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.partial_fit(_memmap(tmp_path / "inf.dat", X))
    for before, after in zip(weights, model.module_.parameters()):
        assert torch.equal(before, after)
    assert model.n_iter_ == TINY["n_epochs"]


def test_bad_out_of_core_inputs_are_clear_errors(digits, tmp_path):
    with pytest.raises(ValueError, match="2D memmap"):
        DeltaVAE(**TINY).fit(_memmap(tmp_path / "flat.dat", digits.ravel()))
    with pytest.raises(ValueError, match="dtype complex"):
        DeltaVAE(**TINY).fit(_memmap(tmp_path / "complex.dat", digits.astype(complex)))
    with pytest.raises(ValueError, match="0 sample"):
        DeltaVAE(**TINY).fit(_RowsDataset(digits[:0]))

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(torch.as_tensor(digits))

    with pytest.raises(TypeError, match="map-style Dataset"):
        DeltaVAE(**TINY).fit(Stream())
    model = DeltaVAE(**TINY).fit(digits)
    with pytest.raises(ValueError, match="63 features"):
        model.partial_fit(_memmap(tmp_path / "narrow.dat", digits[:, :63].copy()))


_MEMORY_SCRIPT = """
import sys
import numpy as np
import torch
from skspread.deep import DeltaVAE


def peak_mib():
    # VmHWM: this program's own peak. Its ru_maxrss would also hold the
    # resident memory of the pytest process that started it (Linux keeps
    # the larger across exec).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


torch.set_num_threads(1)
path, n_rows, n_features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, n_features))
before = peak_mib()
model = DeltaVAE(n_components=4, hidden_layer_sizes=(16,), n_epochs=1, batch_size=4096,
                 device="cpu", random_state=0).fit(X)
print(before, peak_mib(), np.isfinite(model.history_[0]["loss"]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM in /proc")
def test_fit_on_one_gigabyte_memmap_does_not_hold_the_data(tmp_path):
    # 2**20 rows of 256 float32 values: 1 GiB. A copy would cost 1 GiB (2 GiB
    # standardised in float64). A fresh process that imports skspread.deep
    # and torch and fits on it peaked at 406-418 MiB (426-438 MB), the
    # imports 355 MiB of it with the distributed extra installed (then
    # scikit-learn imports pandas and pyarrow): the 400 MB (381 MiB)
    # is out of reach, as torch's code paged in by the first steps adds
    # 14 MiB and a step on a batch of 4 MiB needs 13 MiB more; the rest is
    # the batch order (4 bytes a row), the batch and what glibc's heap keeps.
    # The peak varies with the machine and the venv: 414-423 MiB on the
    # development machine, 431 MiB once in a fresh CI venv (its imports took
    # 360 MiB). Bounds with room for that: the fit adds under 80 MiB, the
    # process peaks under 450 MiB.
    n_rows, n_features = 2**20, 256
    path = tmp_path / "big.dat"
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((4, n_features)).astype(np.float32)
    with open(path, "wb") as file:
        for _ in range(n_rows // 65536):
            latent = rng.standard_normal((65536, 4)).astype(np.float32)
            file.write((latent @ mixing).tobytes())
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEMORY_SCRIPT), str(path), str(n_rows), str(n_features)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    before_mib, after_mib, finite = result.stdout.split()
    assert finite == "True"
    assert float(after_mib) - float(before_mib) < 80, result.stdout
    assert float(after_mib) < 450, result.stdout


def test_early_stopping_on_a_memmap_equals_the_in_memory_fit(digits, tmp_path):
    # The validation rows are read into memory, the training rows stay lazy.
    params = dict(TINY, n_epochs=3, early_stopping=True, validation_fraction=0.2)
    in_memory = DeltaVAE(**params).fit(digits)
    out_of_core = DeltaVAE(**params).fit(_memmap(tmp_path / "X.dat", digits))
    _same_fit(in_memory, out_of_core, digits)
    assert [e["validation_loss"] for e in in_memory.history_] == [
        e["validation_loss"] for e in out_of_core.history_
    ]
