"""Tests of DeltaVAE and its torch backend (paper section 4.2, spec sections 1 and 5)."""

import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import parametrize_with_checks

from skspread import DeltaVAE

torch = pytest.importorskip("torch")

from skspread._testing import ResidualMap, SpreadModule, Trainer  # noqa: E402
from skspread.spread import GaussianSpread, LaplaceSpread  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TINY = dict(n_components=2, hidden_layer_sizes=(8,), n_epochs=2, batch_size=16, device="cpu")
SMALL = dict(n_components=4, hidden_layer_sizes=(32,), batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:600] / 16.0


def _linear_implicit_data(n_samples=4000, seed=0):
    """x = W z with D = 10, K = 2: a deterministic rank-2 model."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((10, 2))
    return rng.standard_normal((n_samples, 2)) @ mixing.T, mixing


def _fitted_linear(objective="low_variance", **params):
    X, mixing = _linear_implicit_data()
    model = DeltaVAE(
        n_components=2,
        architecture="linear",
        n_epochs=10,
        batch_size=128,
        learning_rate=2e-2,
        objective=objective,
        random_state=0,
        device="cpu",
        **params,
    ).fit(X)
    # The networks see standardised data: the generator's weight in the
    # data's units is the internal one times the data scale.
    generator_weight = model.module_.decoder[0].weight.detach().numpy().astype(float)
    return X, mixing, model.data_scale_ * generator_weight


# --- scikit-learn contract --------------------------------------------------


@parametrize_with_checks(
    [
        DeltaVAE(**TINY),
        DeltaVAE(spread=None, **TINY),
        DeltaVAE(learn_spread="covariance", spread_rank=1, **TINY),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- torch is optional ------------------------------------------------------


def _run_python(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_import_and_construction_do_not_import_torch():
    output = _run_python(
        """
        import sys
        import skspread
        from sklearn.base import clone
        vae = clone(skspread.DeltaVAE(n_components=3))
        print(vae.get_params()["n_components"], "torch" in sys.modules)
        """
    )
    assert output.split() == ["3", "False"]


def test_deep_import_leaves_the_linear_estimators_unloaded():
    # SpreadICA's start (FastICA) imports much of scikit-learn: a DeltaVAE
    # program does not pay for it, and the package's names still resolve.
    output = _run_python(
        """
        import sys
        from skspread.deep import DeltaVAE
        print(sorted(m for m in ("skspread._ica", "skspread._factor_analysis",
                                 "sklearn.decomposition") if m in sys.modules))
        import skspread
        from skspread import *
        from skspread._ica import SpreadICA as defined
        print(skspread.SpreadICA is defined, "SpreadFactorAnalysis" in dir(skspread))
        """
    )
    assert output.split("\n")[:2] == ["[]", "True True"]


def test_fit_without_torch_names_the_deep_extra():
    output = _run_python(
        """
        import sys

        class NoTorch:  # simulates a machine without torch
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {name!r}")

        sys.meta_path.insert(0, NoTorch())
        from skspread import DeltaVAE
        try:
            DeltaVAE(n_components=1).fit([[0.0, 1.0], [1.0, 0.0]])
        except ImportError as error:
            print(error)
        """
    )
    assert 'pip install "skspread[deep]"' in output


# --- the spread: closed forms, Woodbury, the residual map -----------------


def _monte_carlo_check(spread_module, Y_mean, M, n_draws, seed):
    """Closed form of E_e log k(y_mean + e - f(m)) against its sample mean."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        noise = spread_module.noise((n_draws, Y_mean.shape[-1]), generator)
        draws = spread_module.log_prob(Y_mean + noise, M)
        closed_form = spread_module.expected_log_prob(Y_mean, M)
    standard_error = draws.std() / np.sqrt(n_draws)
    assert abs(float(draws.mean() - closed_form)) < 4 * float(standard_error)


@pytest.mark.parametrize(
    "kernel", [GaussianSpread(0.7), LaplaceSpread(0.4), LaplaceSpread(2.0)], ids=repr
)
def test_low_variance_decoder_term_matches_monte_carlo(kernel):
    # Spec section 5: E_y log N(y|m, s^2 I) = log N(y_bar|m, s^2 I) - D/2 and,
    # per coordinate, E_y log Lap(y|m, b) = -log(2b) - (|d| + b exp(-|d|/b)) / b.
    spread = SpreadModule(kernel, n_features=5).double()
    generator = torch.Generator().manual_seed(0)
    Y_mean, M = torch.randn((2, 1, 5), generator=generator, dtype=torch.float64)
    _monte_carlo_check(spread, Y_mean, M, n_draws=100_000, seed=1)


def test_low_variance_term_of_learned_spread_matches_monte_carlo():
    # The learned covariance (E log N(y|m, Sigma) = log N(y_bar|m, Sigma) - D/2)
    # and a learned mean map f (the expectation is taken around f(x)).
    torch.manual_seed(0)
    covariance = SpreadModule(GaussianSpread(0.5), n_features=6, rank=2).double()
    mean_map = ResidualMap(6, hidden_size=8).double()
    mean_map.gain_logit.data.fill_(3.0)
    mapped = SpreadModule(LaplaceSpread(0.5), n_features=6, mean_map=mean_map).double().eval()
    X, M = torch.randn((2, 1, 6), dtype=torch.float64)
    _monte_carlo_check(covariance, X, M, n_draws=100_000, seed=2)
    with torch.no_grad():
        Y_mean = mapped.centre(X)
    _monte_carlo_check(mapped, Y_mean, M, n_draws=100_000, seed=3)


def test_woodbury_log_density_equals_dense_gaussian():
    # Spec section 1: Sigma = s^2 I + U U^T by Woodbury, never a D x D matrix.
    torch.manual_seed(0)
    spread = SpreadModule(GaussianSpread(0.3), n_features=7, rank=3).double()
    Y, M = torch.randn((2, 50, 7), dtype=torch.float64)
    factor = spread.factor().detach()
    dense = torch.distributions.MultivariateNormal(
        M, covariance_matrix=0.09 * torch.eye(7, dtype=torch.float64) + factor @ factor.T
    )
    np.testing.assert_allclose(
        spread.log_prob(Y, M).detach().numpy(), dense.log_prob(Y).numpy(), rtol=0, atol=1e-6
    )
    # The norm constraint that keeps the learned divergence bounded.
    assert float(torch.linalg.norm(factor) ** 2) == pytest.approx(3 * 0.09)


def test_negative_entropy_of_learned_covariance_is_dense_gaussian_value_and_gradient():
    # Section 3.1: the spread maximises -H(k) - ELBO; for k = N(0, Sigma),
    # -H(k) = -D/2 log(2 pi) - 1/2 log|Sigma| - D/2, with the same gradient in psi.
    torch.manual_seed(0)
    spread = SpreadModule(GaussianSpread(0.3), n_features=7, rank=3).double()
    spread.negative_entropy().backward()
    raw = spread.raw_factor.detach().clone().requires_grad_(True)
    factor = raw * (spread.factor_norm / torch.linalg.norm(raw))
    covariance = 0.09 * torch.eye(7, dtype=torch.float64) + factor @ factor.T
    dense = -3.5 * np.log(2 * np.pi) - 0.5 * torch.logdet(covariance) - 3.5
    dense.backward()
    value = spread.negative_entropy().detach()
    assert float(value) == pytest.approx(float(dense.detach()), abs=1e-10)
    np.testing.assert_allclose(
        spread.raw_factor.grad.numpy(), raw.grad.numpy(), rtol=0, atol=1e-10
    )


def test_game_step_descends_model_and_ascends_spread_from_one_evaluation(digits):
    # Section 3.1's max-min game: on a spread batch the model's gradient is
    # that of the negative ELBO, the spread's that of minus the divergence
    # bound -H(k) + negative ELBO, both at the same noise draws; a model-only
    # step leaves the spread alone.
    model = DeltaVAE(
        learn_spread="covariance", spread_rank=4, n_epochs=1, random_state=0, **SMALL
    ).fit(digits)
    trainer, module = model._trainer, model.module_
    batch = torch.as_tensor(digits[:64], dtype=torch.float32)
    generator_state = trainer.generator.get_state()
    module.zero_grad(set_to_none=True)
    module.negative_elbo(batch, trainer.generator).mean().backward()
    model_gradients = [p.grad.clone() for p in module.model_parameters()]
    module.zero_grad(set_to_none=True)
    trainer.generator.set_state(generator_state)
    spread_loss = -(
        module.negative_elbo(batch, trainer.generator).mean()
        + module.spread.negative_entropy()
    )
    spread_loss.backward()
    spread_gradients = [p.grad.clone() for p in module.spread_parameters()]

    def snapshot(parameters):
        return [parameter.detach().clone() for parameter in parameters]

    def moved(before, parameters):
        return [not torch.equal(b, p) for b, p in zip(before, parameters)]

    trainer.generator.set_state(generator_state)
    model_before = snapshot(module.model_parameters())
    spread_before = snapshot(module.spread_parameters())
    trainer._game_step(batch)
    for expected, parameter in zip(model_gradients, module.model_parameters()):
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-5, atol=1e-6)
    for expected, parameter in zip(spread_gradients, module.spread_parameters()):
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-5, atol=1e-6)
    assert all(moved(model_before, module.model_parameters()))
    assert all(moved(spread_before, module.spread_parameters()))
    model_before = snapshot(module.model_parameters())
    spread_before = snapshot(module.spread_parameters())
    trainer._model_step(batch)
    assert any(moved(model_before, module.model_parameters()))
    assert not any(moved(spread_before, module.spread_parameters()))


def test_low_rank_spread_noise_has_covariance_sigma():
    n_draws = 200_000
    spread = SpreadModule(GaussianSpread(0.5), n_features=4, rank=2).double()
    with torch.no_grad():
        noise = spread.noise((n_draws, 4), torch.Generator().manual_seed(0)).numpy()
    factor = spread.factor().detach().numpy()
    sigma = 0.25 * np.eye(4) + factor @ factor.T
    # Standard error of an empirical covariance entry of Gaussian data.
    standard_error = np.sqrt((np.outer(np.diag(sigma), np.diag(sigma)) + sigma**2) / n_draws)
    assert np.all(np.abs(noise.T @ noise / n_draws - sigma) < 4 * standard_error)


def test_laplace_spread_noise_has_variance_two_b_squared():
    n_draws, b = 200_000, 0.3
    noise = SpreadModule(LaplaceSpread(b), n_features=1).double().noise(
        (n_draws, 1), torch.Generator().manual_seed(0)
    )
    # Var of the sample second moment: (E e^4 - (E e^2)^2) / n = 20 b^4 / n.
    standard_error = np.sqrt(20 * b**4 / n_draws)
    assert abs(float(torch.mean(noise**2)) - 2 * b**2) < 4 * standard_error
    # The whole distribution: the empirical distribution function at a few
    # points against Laplace(0, b)'s, each within 4 binomial standard errors.
    points = np.array([-3.0, -1.0, -0.2, 0.0, 0.2, 1.0, 3.0]) * b
    expected = np.where(points < 0, 0.5 * np.exp(points / b), 1 - 0.5 * np.exp(-points / b))
    empirical = (noise.numpy() <= points).mean(axis=0)
    assert np.all(np.abs(empirical - expected) < 4 * np.sqrt(expected * (1 - expected) / n_draws))
    assert torch.all(torch.isfinite(noise))


def _jacobian_spectral_norm(function, x, n_iterations=200):
    """Largest singular value of the Jacobian of ``function`` at ``x``, by power iteration."""
    jacobian = torch.autograd.functional.jacobian(function, x)
    gram = jacobian.T @ jacobian
    vector = torch.ones(x.shape[0], dtype=x.dtype)
    for _ in range(n_iterations):
        vector = gram @ vector
        vector = vector / torch.linalg.norm(vector)
    return float(torch.linalg.norm(jacobian @ vector))


def test_residual_mean_map_is_contractive_and_injective():
    # Spec section 1: f(x) = x + h(x) with Lip(h) < 1 is injective.
    torch.manual_seed(0)
    mean_map = ResidualMap(12, hidden_size=16)
    # Start at the largest gain and train h adversarially towards a large
    # Lipschitz constant.
    mean_map.gain_logit.data.fill_(6.0)
    optimizer = torch.optim.Adam(mean_map.parameters(), lr=1e-2)
    for _ in range(100):
        x = torch.randn(64, 12)
        direction = 1e-2 * torch.randn(64, 12)
        stretch = torch.linalg.norm(mean_map(x + direction) - mean_map(x) - direction, dim=1)
        optimizer.zero_grad()
        (-stretch.mean()).backward()
        optimizer.step()
    mean_map.eval()
    bound = mean_map.lipschitz_bound()
    assert 0.89 < bound < 0.9

    def residual(x):
        return mean_map(x) - x

    with torch.no_grad():
        points = torch.randn(20, 12)
    norms = [_jacobian_spectral_norm(residual, point) for point in points]
    assert max(norms) < 1.0
    with torch.no_grad():
        X, X_other = torch.randn(2, 2000, 12)
        ratios = torch.linalg.norm(mean_map(X) - mean_map(X_other), dim=1) / torch.linalg.norm(
            X - X_other, dim=1
        )
    assert float(ratios.min()) >= 1.0 - bound


# --- training ---------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(spread=None),
        dict(spread="gaussian"),
        dict(spread="laplace"),
        dict(spread="gaussian", objective="exact"),
        dict(learn_spread="covariance", spread_rank=4),
        dict(learn_spread="mean"),
        dict(architecture="conv", image_shape=(8, 8), hidden_layer_sizes=(32,)),
    ],
    ids=str,
)
def test_training_reduces_the_negative_elbo(digits, params):
    model = DeltaVAE(**{**SMALL, **params, "n_epochs": 3, "random_state": 0}).fit(digits)
    losses = [entry["loss"] for entry in model.history_]
    assert losses[-1] < losses[0]
    assert np.all(np.isfinite(model.score_samples(digits[:20])))


@pytest.mark.parametrize("params", [dict(), dict(spread="laplace")], ids=str)
def test_spread_fit_recovers_subspace_of_linear_implicit_model(params):
    # Paper section 4.2 on a linear implicit model x = W z (D = 10, K = 2):
    # the spread fit of a linear generator spans the column space of W.
    _, mixing, generator_weight = _fitted_linear(**params)
    assert np.max(subspace_angles(generator_weight, mixing)) < 0.1


def test_exact_spread_elbo_recovers_scale_low_variance_form_shrinks_it():
    # Spec section 2/3: the spread MLE of a deterministic linear model is
    # unbiased (W W^T = S), the noise-only MLE shrinks singular values to
    # sqrt(lambda - sigma^2). The exact spread ELBO behaves like the former;
    # the lower-variance form of spec section 5 like the latter (it drops the
    # noise/decoder cross term), though it keeps the subspace.
    X, _, exact_weight = _fitted_linear(objective="exact", spread_scale=1.0)
    _, _, low_variance_weight = _fitted_linear(objective="low_variance", spread_scale=1.0)
    data_values = np.linalg.svd(X - X.mean(0), compute_uv=False)[:2] / np.sqrt(len(X))
    noise_only_values = np.sqrt(data_values**2 - 1.0)
    exact = np.linalg.svd(exact_weight, compute_uv=False)
    low_variance = np.linalg.svd(low_variance_weight, compute_uv=False)
    # The second direction has the largest relative shrinkage: compare there.
    assert abs(exact[1] - data_values[1]) < abs(exact[1] - noise_only_values[1])
    assert low_variance[1] < noise_only_values[1] < data_values[1]


def test_learned_spread_trains_after_warm_up(digits):
    model = DeltaVAE(
        learn_spread="covariance", spread_rank=4, n_epochs=2, random_state=0, **SMALL
    ).fit(digits)
    assert "spread_divergence" not in model.history_[0]
    assert np.isfinite(model.history_[1]["spread_divergence"])
    factor = model.module_.spread.factor().detach()
    # In the standardised units the networks see.
    assert float(torch.linalg.norm(factor) ** 2) == pytest.approx(
        4 * (model.spread_scale_ / model.data_scale_) ** 2, rel=1e-5
    )


def test_importance_weighted_bound_is_tighter_than_elbo(digits):
    model = DeltaVAE(n_epochs=3, random_state=0, **SMALL).fit(digits)
    elbo = model.score(digits)
    model.set_params(n_importance_samples=64)
    assert model.score(digits) > elbo


# --- state: reproducibility, pickling, partial_fit, warm_start, Ctrl-C ---


def test_same_random_state_gives_bit_identical_results(digits):
    params = dict(learn_spread="covariance", spread_rank=2, n_epochs=2, **SMALL)
    first = DeltaVAE(random_state=3, **params).fit(digits)
    second = DeltaVAE(random_state=3, **params).fit(digits)
    other = DeltaVAE(random_state=4, **params).fit(digits)
    for method in ("transform", "score_samples"):
        np.testing.assert_array_equal(
            getattr(first, method)(digits), getattr(second, method)(digits)
        )
    np.testing.assert_array_equal(first.sample(5, random_state=0), second.sample(5, random_state=0))
    assert not np.array_equal(first.transform(digits), other.transform(digits))


def test_sample_is_the_deterministic_generator(digits):
    model = DeltaVAE(n_epochs=1, random_state=0, **SMALL).fit(digits)
    latent = np.random.RandomState(7).standard_normal((6, model.n_components))
    np.testing.assert_array_equal(model.sample(6, random_state=7), model.inverse_transform(latent))
    with pytest.raises(ValueError, match="n_components=4"):
        model.inverse_transform(np.zeros((2, 3)))


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trip_keeps_outputs_and_training_state(digits, tmp_path, dump):
    model = DeltaVAE(learn_spread="covariance", spread_rank=2, n_epochs=2, random_state=0, **SMALL)
    model.fit(digits)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(model))
    else:
        joblib.dump(model, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    for method in ("transform", "score_samples"):
        np.testing.assert_array_equal(
            getattr(model, method)(digits), getattr(loaded, method)(digits)
        )
    # Optimiser and generator states travel too: training continues identically.
    model.partial_fit(digits)
    loaded.partial_fit(digits)
    np.testing.assert_array_equal(model.transform(digits), loaded.transform(digits))
    assert [entry["loss"] for entry in loaded.history_] == [
        entry["loss"] for entry in model.history_
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_model_saved_on_cuda_loads_on_cpu_with_warning(digits):
    model = DeltaVAE(n_epochs=1, random_state=0, **SMALL).fit(digits)
    # Mark the fitted model as trained on CUDA (its tensors are on the CPU).
    model.device_ = "cuda:0"
    model._trainer.device = torch.device("cuda:0")
    payload = pickle.dumps(model)
    model.device_, model._trainer.device = "cpu", torch.device("cpu")
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        loaded = pickle.loads(payload)
    assert loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))
    loaded.partial_fit(digits)


def test_partial_fit_is_one_epoch_of_fit(digits):
    fitted = DeltaVAE(n_epochs=2, random_state=0, **SMALL).fit(digits)
    streamed = DeltaVAE(random_state=0, **SMALL)
    streamed.partial_fit(digits).partial_fit(digits)
    assert streamed.n_iter_ == 2 and len(streamed.history_) == 2
    np.testing.assert_array_equal(fitted.transform(digits), streamed.transform(digits))


def test_warm_start_continues_and_cold_start_restarts(digits):
    once = DeltaVAE(n_epochs=2, random_state=0, **SMALL).fit(digits)
    warm = DeltaVAE(n_epochs=1, warm_start=True, random_state=0, **SMALL)
    warm.fit(digits).fit(digits)
    assert [entry["epoch"] for entry in warm.history_] == [1, 2]
    np.testing.assert_array_equal(once.transform(digits), warm.transform(digits))
    cold = DeltaVAE(n_epochs=1, random_state=0, **SMALL)
    cold.fit(digits).fit(digits)
    assert cold.n_iter_ == 1
    np.testing.assert_array_equal(
        cold.transform(digits), clone(cold).fit(digits).transform(digits)
    )


def test_history_records_every_epoch(digits):
    model = DeltaVAE(n_epochs=3, random_state=0, **SMALL).fit(digits)
    assert [entry["epoch"] for entry in model.history_] == [1, 2, 3]
    assert all(entry["time"] > 0 and np.isfinite(entry["loss"]) for entry in model.history_)
    assert model.n_iter_ == 3


def test_keyboard_interrupt_stops_training_and_keeps_the_model(digits, monkeypatch):
    model_step = Trainer._model_step
    calls = []

    def interrupted_step(self, batch):
        calls.append(1)
        if len(calls) == 15:  # in the second epoch (10 batches per epoch)
            raise KeyboardInterrupt
        return model_step(self, batch)

    monkeypatch.setattr(Trainer, "_model_step", interrupted_step)
    model = DeltaVAE(n_epochs=5, random_state=0, **SMALL)
    with pytest.warns(RuntimeWarning, match="interrupted after 1 complete epoch"):
        model.fit(digits)
    assert model.n_iter_ == 1
    assert np.all(np.isfinite(model.transform(digits)))


def test_progress_bar_with_verbose(digits, capsys):
    DeltaVAE(n_epochs=1, verbose=2, random_state=0, **SMALL).fit(digits)
    assert "loss=" in capsys.readouterr().err


# --- clear errors -----------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(spread=None, noise_variance=0.0), "no likelihood"),
        (dict(noise_variance=0.5), "deterministic"),
        (dict(spread="laplace", learn_spread="covariance"), "Gaussian covariance"),
        (dict(spread=None, learn_spread="mean"), "needs a spread"),
        (dict(learn_spread="covariance", spread_rank=100), "exceeds n_features"),
        (dict(architecture="conv"), "image_shape"),
        (dict(architecture="conv", image_shape=(6, 6)), "image_shape"),
        (dict(device="tpu"), "device must be"),
    ],
    ids=str,
)
def test_bad_parameters_raise_clear_errors(digits, params, message):
    with pytest.raises(ValueError, match=message):
        DeltaVAE(**{**SMALL, **params, "n_epochs": 1}).fit(digits)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(digits, device):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        DeltaVAE(**{**SMALL, "device": device, "n_epochs": 1}).fit(digits)


# --- CUDA (run with -m cuda on a GPU) ----------------------------------------


@pytest.mark.cuda
@CUDA
def test_cuda_fit_matches_cpu_objective_and_loads_on_cpu(digits, tmp_path):
    params = dict(SMALL, device="cuda", n_epochs=3, random_state=0)
    model = DeltaVAE(learn_spread="covariance", spread_rank=2, **params).fit(digits)
    assert model.device_.startswith("cuda")
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    joblib.dump(model, tmp_path / "model.joblib")
    np.save(tmp_path / "digits.npy", digits)
    np.save(tmp_path / "codes.npy", model.transform(digits))
    # A process that cannot see the GPU loads the model on the CPU.
    output = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            textwrap.dedent(
                f"""
                import joblib, numpy as np
                model = joblib.load({str(tmp_path / 'model.joblib')!r})
                X = np.load({str(tmp_path / 'digits.npy')!r})
                codes = np.load({str(tmp_path / 'codes.npy')!r})
                print(model.device_, np.max(np.abs(model.transform(X) - codes)))
                """
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    device, difference = output.stdout.split()
    assert device == "cpu" and float(difference) < 1e-6
    assert "loaded on the CPU" in output.stderr


@pytest.mark.cuda
@CUDA
def test_auto_device_picks_cuda(digits):
    model = DeltaVAE(**{**SMALL, "device": "auto", "n_epochs": 1}).fit(digits)
    assert model.device_.startswith("cuda")
