"""DeltaVAE's training loop: honest warm starts, early stopping, callbacks, resuming."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from skspread import DeltaVAE
from skspread.deep import Checkpoint
from skspread.spread import LaplaceSpread

torch = pytest.importorskip("torch")

TINY = dict(n_components=2, hidden_layer_sizes=(8,), batch_size=16, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((80, 2)) @ rng.standard_normal((2, 5))


@pytest.mark.parametrize(
    "change, check",
    [
        (dict(n_components=3), lambda model, X: model.transform(X).shape == (80, 3)),
        (dict(spread="laplace"), lambda model, X: isinstance(model.spread_, LaplaceSpread)),
        (dict(hidden_layer_sizes=(4,)),
         lambda model, X: model.module_.decoder[0].out_features == 4),
        (dict(architecture="linear"), lambda model, X: len(model.module_.decoder) == 1),
    ],
    ids=["n_components", "spread", "hidden_layer_sizes", "architecture"],
)
def test_warm_start_refits_anew_with_a_warning_when_the_structure_changed(data, change, check):
    model = DeltaVAE(n_epochs=1, warm_start=True, **TINY).fit(data)
    model.set_params(**change)
    with pytest.warns(UserWarning, match=f"{next(iter(change))} changed.*fitted anew"):
        model.fit(data)
    assert check(model, data)
    assert model.n_iter_ == 1
    fresh = DeltaVAE(n_epochs=1, **{**TINY, **change}).fit(data)
    np.testing.assert_array_equal(model.transform(data), fresh.transform(data))


def test_warm_start_with_the_same_structure_continues_silently(data, recwarn):
    model = DeltaVAE(n_epochs=1, warm_start=True, **TINY).fit(data)
    model.set_params(learning_rate=1e-4, batch_size=8).fit(data)
    assert model.n_iter_ == 2
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_early_stopping_records_validation_and_restores_the_best_epoch(data):
    # tol larger than any improvement: every epoch after the first is stale.
    params = dict(early_stopping=True, validation_fraction=0.25, **TINY)
    model = DeltaVAE(n_epochs=20, n_iter_no_change=2, tol=1e9, **params).fit(data)
    assert model.n_iter_ == 3
    losses = [entry["validation_loss"] for entry in model.history_]
    assert np.all(np.isfinite(losses))
    assert model.best_epoch_ == 1 + int(np.argmin(losses))
    # The same split and trajectory, stopped at the best epoch.
    best = DeltaVAE(n_epochs=model.best_epoch_, **params).fit(data)
    np.testing.assert_array_equal(model.transform(data), best.transform(data))
    assert DeltaVAE(n_epochs=1, **TINY).fit(data).best_epoch_ is None


def test_early_stopping_needs_rows_on_both_sides(data):
    with pytest.raises(ValueError, match="validation_fraction"):
        DeltaVAE(n_epochs=1, early_stopping=True, validation_fraction=0.5, **TINY).fit(data[:1])


def test_callbacks_see_every_epoch_and_can_stop(data):
    seen = []

    def record(estimator, entry):
        seen.append((estimator.n_iter_, entry["epoch"]))
        return entry["epoch"] == 2

    model = DeltaVAE(n_epochs=5, callbacks=[record], **TINY).fit(data)
    assert seen == [(1, 1), (2, 2)] and model.n_iter_ == 2


class KillAt:
    """A callback that kills the process it was made in with SIGKILL after an epoch.

    Only that process: the resumed estimator carries the callback too.
    """

    def __init__(self, epoch):
        self.epoch = epoch
        self.pid = os.getpid()

    def __call__(self, estimator, entry):
        if entry["epoch"] == self.epoch and os.getpid() == self.pid:
            os.kill(self.pid, 9)
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize(
    "early_stopping",
    # One subprocess (about 10 s, mostly imports) in the default run.
    [pytest.param(False, marks=pytest.mark.slow), True],
)
def test_resume_after_the_training_process_is_killed_gives_the_uninterrupted_fit(
    data, tmp_path, early_stopping
):
    params = dict(TINY, n_epochs=5, early_stopping=early_stopping, n_iter_no_change=3)
    path = tmp_path / "vae.checkpoint"
    np.save(tmp_path / "data.npy", data)
    script = f"""
        import sys
        import numpy as np
        import torch
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_deep_training import KillAt
        from skspread import DeltaVAE
        from skspread.deep import Checkpoint
        torch.set_num_threads(1)
        X = np.load({str(tmp_path / 'data.npy')!r})
        DeltaVAE(callbacks=[Checkpoint({str(path)!r}, every=2), KillAt(3)], **{params!r}).fit(X)
        print("not killed")
    """
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True
    )
    assert completed.returncode == -9, completed.stderr
    assert "not killed" not in completed.stdout
    # The checkpoint of epoch 2 survived the kill at epoch 3.
    assert Checkpoint.load(path).n_iter_ == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = Checkpoint.resume(path, data)
        uninterrupted = DeltaVAE(**params).fit(data)
    finally:
        torch.set_num_threads(threads)
    assert resumed.n_iter_ == uninterrupted.n_iter_ > 2
    assert resumed.best_epoch_ == uninterrupted.best_epoch_
    for key in ("loss", "validation_loss"):
        assert [entry.get(key) for entry in resumed.history_] == [
            entry.get(key) for entry in uninterrupted.history_
        ]
    np.testing.assert_array_equal(resumed.transform(data), uninterrupted.transform(data))
    np.testing.assert_array_equal(
        resumed.score_samples(data), uninterrupted.score_samples(data)
    )


def test_the_trainers_adam_steps_are_torch_optim_adams_bit_for_bit():
    # The trainer holds torch's functional Adam update in a small class (it keeps
    # torch._dynamo out of the process); a torch release that changes that
    # function's contract must fail here, not drift silently.
    from skspread._testing import Adam

    def run(make_optimizer):
        torch.manual_seed(0)
        network = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
        optimizer = make_optimizer(network.parameters())
        inputs = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
        for step in range(12):
            if step == 6:
                optimizer.param_groups[0]["lr"] = 3e-3
            optimizer.zero_grad()
            network(inputs).pow(2).sum().backward()
            optimizer.step()
        return [parameter.detach().clone() for parameter in network.parameters()], optimizer

    ours, optimizer = run(lambda parameters: Adam(parameters, lr=1e-2))
    theirs, _ = run(lambda parameters: torch.optim.Adam(parameters, lr=1e-2))
    for mine, reference in zip(ours, theirs):
        assert torch.equal(mine, reference)
    # A state_dict round trip continues the same steps.
    restored = Adam(
        [torch.nn.Parameter(p.clone()) for p in optimizer.param_groups[0]["params"]], lr=1.0
    )
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[0]["lr"] == 3e-3
    assert set(restored.state) == set(optimizer.state)
