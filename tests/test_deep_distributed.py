"""Data-parallel DeltaVAE: fit inside a torch.distributed group, and fit_distributed."""

import socket

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skspread import DeltaVAE, SpreadFactorAnalysis
from skspread.deep import Checkpoint, fit_distributed

torch = pytest.importorskip("torch")
distributed = torch.distributed

pytestmark = pytest.mark.skipif(
    not distributed.is_available(), reason="torch built without torch.distributed"
)

TINY = dict(n_components=2, hidden_layer_sizes=(8,), batch_size=33, device="cpu")
# A fixed spread, a learned covariance (its max-min game starts after one
# epoch of warm-up) and the VAE baseline; batches of 33 rows split 17 + 16,
# the last batch of 300 rows has 3.
CONFIGURATIONS = [
    dict(TINY, n_epochs=2, random_state=0),
    dict(TINY, n_epochs=3, learn_spread="covariance", spread_rank=2, random_state=1),
    dict(TINY, n_epochs=2, spread=None, random_state=2),
]


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300] / 16.0


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _weights(model):
    return [tensor.detach().clone() for tensor in model.module_.state_dict().values()]


def _assert_same_fit(single, parallel, X, tolerance):
    for expected, actual in zip(_weights(single), _weights(parallel)):
        torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(
        [entry["loss"] for entry in parallel.history_],
        [entry["loss"] for entry in single.history_],
        rtol=tolerance,
    )
    np.testing.assert_allclose(parallel.transform(X), single.transform(X), rtol=tolerance, atol=tolerance)


@pytest.fixture
def group_of_one():
    """A gloo process group of this process alone (world size 1)."""
    distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    yield
    distributed.destroy_process_group()


@pytest.mark.parametrize("params", CONFIGURATIONS[:2])
def test_fit_inside_a_process_group_takes_the_single_process_steps(digits, params, group_of_one):
    # The data-parallel path (DistributedDataParallel, weighted share loss,
    # loss value carried with the gradients, the game step's entropy
    # gradient) with one process: the plain fit, up to float32 rounding.
    parallel = DeltaVAE(**params).fit(digits)
    distributed.destroy_process_group()
    single = DeltaVAE(**params).fit(digits)
    distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    _assert_same_fit(single, parallel, digits, 1e-5)
    assert parallel._trainer.data_parallel is None  # nothing distributed is pickled
    assert np.isfinite(DeltaVAE(**params).fit(digits).score(digits))


def test_checkpoint_during_a_data_parallel_fit_resumes(digits, group_of_one, tmp_path):
    path = tmp_path / "vae.checkpoint"
    params = dict(CONFIGURATIONS[0], n_epochs=3)
    model = DeltaVAE(**params, callbacks=[Checkpoint(path, every=2)]).fit(digits)
    resumed = Checkpoint.resume(path, digits)
    _assert_same_fit(model, resumed, digits, 0)


def test_fit_distributed_arguments_are_checked(digits, group_of_one):
    with pytest.raises(RuntimeError, match="inside one.*estimator.fit"):
        fit_distributed(DeltaVAE(**TINY), digits)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(n_processes=0), ValueError, "positive int"),
        (dict(n_processes=1.5), TypeError, "positive int"),
        (dict(backend="mpi"), ValueError, "backend"),
    ],
)
def test_fit_distributed_refuses_bad_arguments(digits, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit_distributed(DeltaVAE(**TINY), digits, **kwargs)


def test_fit_distributed_fits_only_deltavae(digits):
    with pytest.raises(TypeError, match="fits a DeltaVAE; got SpreadFactorAnalysis"):
        fit_distributed(SpreadFactorAnalysis(2), digits)


def _fit_in_group(rank, port, folder, X):
    """A rank of a 2-process group, as a torchrun script runs it."""
    torch.set_num_threads(1)
    distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    try:
        for index, params in enumerate([*CONFIGURATIONS, dict(TINY, n_epochs=1)]):
            model = DeltaVAE(**params).fit(X)
            torch.save(
                {"weights": _weights(model), "history": model.history_},
                f"{folder}/rank{rank}_{index}.pt",
            )
        # Rank 1 with one row less: both ranks refuse, neither waits forever.
        try:
            DeltaVAE(**CONFIGURATIONS[0]).fit(X[: len(X) - rank])
        except ValueError as error:
            with open(f"{folder}/rank{rank}_error.txt", "w") as file:
                file.write(str(error))
        # Leave together (as fit_distributed's processes do).
        distributed.barrier()
    finally:
        distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_end_alike_and_equal_the_single_process_fit(digits, tmp_path):
    torch.multiprocessing.spawn(
        _fit_in_group, args=(_free_port(), str(tmp_path), digits), nprocs=2, join=True
    )
    for rank in (0, 1):
        message = (tmp_path / f"rank{rank}_error.txt").read_text()
        assert "differ in" in message and "'rows': [300, 299]" in message
    for index, params in enumerate([*CONFIGURATIONS, None]):
        ranks = [torch.load(tmp_path / f"rank{rank}_{index}.pt") for rank in (0, 1)]
        # Every rank ends with identical weights, even without random_state
        # (the last run): they take rank 0's weights, batches and noise.
        for first, second in zip(ranks[0]["weights"], ranks[1]["weights"]):
            assert torch.equal(first, second)
        assert ranks[0]["history"][-1]["loss"] == ranks[1]["history"][-1]["loss"]
        if params is None:
            continue
        single = DeltaVAE(**params).fit(digits)
        for expected, actual in zip(_weights(single), ranks[0]["weights"]):
            torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            [entry["loss"] for entry in ranks[0]["history"]],
            [entry["loss"] for entry in single.history_],
            rtol=1e-5,
        )


@pytest.mark.slow
def test_fit_distributed_on_a_memmap_equals_the_single_process_fit(digits, tmp_path):
    path = tmp_path / "X.dat"
    digits.astype(np.float32).tofile(path)
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=digits.shape)
    params = CONFIGURATIONS[1]
    model = DeltaVAE(**params)
    assert fit_distributed(model, mapped, n_processes=2) is model
    _assert_same_fit(DeltaVAE(**params).fit(mapped), model, digits, 1e-5)
    bad = digits.copy()
    bad[7, 3] = np.nan
    with pytest.raises(RuntimeError, match="process failed(.|\n)*contains NaN"):
        fit_distributed(DeltaVAE(**params), bad, n_processes=2)
