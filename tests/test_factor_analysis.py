"""SpreadFactorAnalysis: spread MLE of linear Gaussian models.

Paper section 1.1.1 (eq 7-12).
"""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, stats
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skspread import SpreadFactorAnalysis
from skspread.datasets import make_ica, make_line
from skspread.spread import GaussianSpread, LaplaceSpread

# Convergence criteria for comparisons of two optimisers that should meet at
# the same maximum: far below the tolerances asserted on the results.
TIGHT_TOL = 1e-13
TIGHT_MAX_ITER = 100_000


def _factor_data(n_samples, n_features, n_components, seed, noise_range=(0.2, 1.0)):
    """Data from the factor model x = z W + mu + N(0, diag(psi)) with its parameters."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n_components, n_features))
    noise = rng.uniform(*noise_range, size=n_features)
    mean = rng.uniform(-3.0, 3.0, size=n_features)
    X = (
        rng.standard_normal((n_samples, n_components)) @ loadings
        + rng.standard_normal((n_samples, n_features)) * np.sqrt(noise)
        + mean
    )
    return X, loadings, noise


def _aligned_error(estimate, truth):
    """Relative Frobenius error of loadings after the best rotation of the latent space."""
    rotation, _ = linalg.orthogonal_procrustes(estimate.T, truth.T)
    return linalg.norm(estimate.T @ rotation - truth.T) / linalg.norm(truth)


def _orthogonal_rows(n_components, n_features, norm, seed):
    rng = np.random.default_rng(seed)
    basis, _ = linalg.qr(rng.standard_normal((n_features, n_components)), mode="economic")
    return norm * basis.T


@pytest.mark.parametrize("n_components, n_features", [(1, 5), (3, 10)])
def test_line_model_spread_mle_is_consistent_noise_only_mle_is_biased_eq_7_12(
    n_components, n_features
):
    # Paper eq 7-12: the deterministic model x = z theta (a line, or a K = 3
    # subspace with orthogonal rows of equal norm, so that the biased optimum
    # sqrt((|theta|^2 - sigma^2) / |theta|^2) theta holds row by row).
    n_samples, norm, spread_variance = 200_000, 2.0, 1.0
    theta = _orthogonal_rows(n_components, n_features, norm, seed=n_components)
    X = make_line(n_samples, theta, random_state=0).data
    shrinkage = np.sqrt((norm**2 - spread_variance) / norm**2)

    spread_fit = SpreadFactorAnalysis(
        n_components, spread_scale=np.sqrt(spread_variance), noise_variance=0.0
    ).fit(X)
    noise_only_fit = SpreadFactorAnalysis(
        n_components, spread=None, noise_variance=spread_variance
    ).fit(X)

    # W = theta^T M^(1/2) up to rotation, with M - I the sampling error of the
    # latent second moment (entries of variance 2/N on, 1/N off the diagonal):
    # the relative error has RMS sqrt((K + 1) / (4 N)); the noise-only
    # estimate sqrt(lambda - sigma^2) amplifies it by |theta|^2 / (|theta|^2 - sigma^2).
    rms = np.sqrt((n_components + 1) / (4 * n_samples))
    spread_tolerance = 3 * rms
    noise_only_tolerance = 3 * rms * norm**2 / (norm**2 - spread_variance)
    assert max(spread_tolerance, noise_only_tolerance) <= 0.01  # the 1%

    assert _aligned_error(spread_fit.components_, theta) < spread_tolerance
    assert _aligned_error(noise_only_fit.components_, shrinkage * theta) < noise_only_tolerance
    # The two optima are 1 - sqrt(3/4) = 13% apart: each test above can fail.
    assert _aligned_error(noise_only_fit.components_, theta) > 10 * noise_only_tolerance


@given(
    seed=st.integers(0, 2**16),
    n_features=st.integers(2, 6),
    data=st.data(),
    noise_variance=st.floats(0.0, 2.0),
    spread_scale=st.floats(0.1, 3.0),
)
@settings(deadline=None, max_examples=30)
def test_closed_form_sigma_drops_out_and_loglike_is_spread_likelihood_spec_3(
    seed, n_features, data, noise_variance, spread_scale
):
    # Spec section 3: W = U_K diag(max(lambda_k - gamma^2, 0))^(1/2), whatever sigma.
    n_components = data.draw(st.integers(1, n_features))
    X, _, _ = _factor_data(40, n_features, n_components, seed)
    fit = SpreadFactorAnalysis(
        n_components, spread_scale=spread_scale, noise_variance=noise_variance
    ).fit(X)
    other_scale = SpreadFactorAnalysis(
        n_components, spread_scale=2 * spread_scale, noise_variance=noise_variance
    ).fit(X)
    np.testing.assert_allclose(fit.components_, other_scale.components_, rtol=1e-12, atol=1e-12)

    values, vectors = linalg.eigh(np.cov(X, rowvar=False, bias=True))
    top = slice(n_features - n_components, None)
    expected = vectors[:, top] * np.sqrt(np.maximum(values[top] - noise_variance, 0.0))
    np.testing.assert_allclose(
        fit.components_.T @ fit.components_, expected @ expected.T, rtol=1e-9, atol=1e-9
    )
    # The stored objective is the exact spread log-likelihood of the training
    # data, summed over the samples as FactorAnalysis's loglike_.
    np.testing.assert_allclose(fit.loglike_[-1], fit.score_samples(X).sum(), rtol=1e-10)


def _spread_model_covariance(model):
    covariance = model.get_covariance()
    covariance.flat[:: len(covariance) + 1] += model.spread_scale_**2
    return covariance


@pytest.mark.parametrize("noise_variance", [0.0, "diagonal"])
def test_score_samples_is_expected_log_likelihood_over_spread_copies_spec_3(noise_variance):
    # E_{y ~ N(x, sigma^2 I)} log N(y; mu, C) = log N(x; mu, C) - sigma^2/2 tr(C^-1).
    X, _, _ = _factor_data(500, 5, 2, seed=1)
    model = SpreadFactorAnalysis(2, spread_scale=0.7, noise_variance=noise_variance).fit(X)
    points = X[:5]
    n_copies = 20_000
    spread = GaussianSpread(model.spread_scale_)
    copies = points[:, None, :] + spread.noise((len(points), n_copies, X.shape[1]), 0)
    model_density = stats.multivariate_normal(model.mean_, _spread_model_covariance(model))
    log_density = model_density.logpdf(copies)
    monte_carlo = log_density.mean(axis=1)
    standard_error = log_density.std(axis=1, ddof=1) / np.sqrt(n_copies)

    exact = model.score_samples(points)
    assert np.all(np.abs(exact - monte_carlo) < 4 * standard_error)
    # Without the trace term the estimate is off by many standard errors.
    assert np.all(np.abs(model_density.logpdf(points) - monte_carlo) > 10 * standard_error)
    # loglike_ is the same quantity summed over the training data.
    np.testing.assert_allclose(model.loglike_[-1], model.score_samples(X).sum(), rtol=1e-10)


def test_noise_only_diagonal_reproduces_factor_analysis_spec_3():
    X, _, _ = _factor_data(2000, 8, 3, seed=2)
    reference = FactorAnalysis(
        3, tol=TIGHT_TOL, max_iter=TIGHT_MAX_ITER, svd_method="lapack"
    ).fit(X)
    baseline = SpreadFactorAnalysis(
        3, spread=None, noise_variance="diagonal", tol=TIGHT_TOL, max_iter=TIGHT_MAX_ITER
    ).fit(X)

    # Both store the log-likelihood summed over the samples.
    np.testing.assert_allclose(baseline.loglike_[-1], reference.loglike_[-1], rtol=1e-6)
    np.testing.assert_allclose(baseline.score_samples(X), reference.score_samples(X), rtol=1e-6)
    reference_covariance = reference.get_covariance()
    np.testing.assert_allclose(
        baseline.get_covariance(),
        reference_covariance,
        atol=1e-5 * np.abs(reference_covariance).max(),
    )
    # Equal posterior means up to the sign of each component.
    signs = np.sign(np.sum(baseline.components_ * reference.components_, axis=1))
    np.testing.assert_allclose(
        baseline.transform(X), reference.transform(X) * signs, atol=1e-4
    )


def test_spread_em_is_factor_analysis_of_the_spread_second_moment_spec_3():
    # Spec section 3: the spread-EM is FA on S + sigma^2 I with noise
    # Psi + sigma^2 I. Build data whose covariance is exactly S + sigma^2 I and
    # fit the noise-only FA to it: same W, noise shifted by sigma^2 (no feature
    # is at the Psi >= 0 bound here).
    X, _, _ = _factor_data(1000, 6, 2, seed=3)
    spread_scale = 0.8
    spread_fit = SpreadFactorAnalysis(
        2,
        spread_scale=spread_scale,
        noise_variance="diagonal",
        tol=TIGHT_TOL,
        max_iter=TIGHT_MAX_ITER,
    ).fit(X)
    assert np.all(spread_fit.noise_variance_ > 0.1)

    spread_moment = np.cov(X, rowvar=False, bias=True) + spread_scale**2 * np.eye(6)
    centred = np.random.default_rng(0).standard_normal((1000, 6))
    centred -= centred.mean(axis=0)
    orthonormal, _ = linalg.qr(centred, mode="economic")
    whitened = np.sqrt(len(orthonormal)) * orthonormal
    X_spread_moment = whitened @ linalg.cholesky(spread_moment, lower=True).T
    equivalent = SpreadFactorAnalysis(
        2, spread=None, noise_variance="diagonal", tol=TIGHT_TOL, max_iter=TIGHT_MAX_ITER
    ).fit(X_spread_moment)

    np.testing.assert_allclose(
        spread_fit.components_.T @ spread_fit.components_,
        equivalent.components_.T @ equivalent.components_,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        spread_fit.noise_variance_ + spread_scale**2, equivalent.noise_variance_, rtol=1e-6
    )


def test_default_tol_stops_within_the_sampling_error_of_the_maximum():
    # EM crawls along the noise variances here (rate ~0.98): the old rule, the
    # last increase of the mean log-likelihood below 1e-4, stopped after 16
    # iterations with a noise variance 0.187 from the maximum, ten times the
    # maximum's own error (0.018); the remaining increase's estimate does not.
    rng = np.random.default_rng(0)
    loadings, noise = rng.normal(size=(3, 12)), rng.uniform(0.1, 1.0, 12)
    X = rng.normal(size=(20000, 3)) @ loadings + rng.normal(size=(20000, 12)) * np.sqrt(noise)
    default = SpreadFactorAnalysis(3, noise_variance="diagonal").fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        maximum = SpreadFactorAnalysis(3, noise_variance="diagonal", tol=0.0, max_iter=5000).fit(X)
    sampling_error = np.abs(maximum.noise_variance_ - noise).max()
    assert np.abs(default.noise_variance_ - maximum.noise_variance_).max() < 0.5 * sampling_error


def test_heywood_case_spread_em_reaches_zero_noise_with_finite_likelihood_spec_3():
    # Feature 0 has no noise. The sample optimum of its noise variance is
    # asymptotically normal around 0, so it lies on the bound Psi_0 = 0 for
    # about half of the samples; for this one it does. FactorAnalysis's
    # iterations approach that bound only slowly (Psi_0 still 3e-3 after its
    # default 1e-2 tolerance stops it, see benchmarks/results/factor_analysis.md).
    n_samples = 5000
    rng = np.random.default_rng(2)
    loadings = rng.standard_normal((2, 6))
    noise = rng.uniform(0.3, 1.0, 6)
    noise[0] = 0.0
    X = (
        rng.standard_normal((n_samples, 2)) @ loadings
        + rng.standard_normal((n_samples, 6)) * np.sqrt(noise)
    )
    max_iter = 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = SpreadFactorAnalysis(
            2, noise_variance="diagonal", tol=1e-10, max_iter=max_iter
        ).fit(X)

    assert model.n_iter_ < max_iter
    loglike = np.asarray(model.loglike_)
    assert np.all(np.isfinite(loglike))
    assert np.all(np.diff(loglike) >= -1e-12 * np.abs(loglike[1:]))
    assert model.noise_variance_[0] == 0.0
    # Loading entries have standard errors of at most sqrt(var_j / N): the
    # aligned Frobenius error stays within 3 of those combined.
    variances = X.var(axis=0)
    tolerance = 3 * np.sqrt(2 * variances.sum() / n_samples) / linalg.norm(loadings)
    assert _aligned_error(model.components_, loadings) < tolerance


def test_deterministic_model_samples_lie_on_its_subspace():
    X = make_line(300, np.random.default_rng(4).standard_normal((2, 5)), random_state=0).data
    X += np.random.default_rng(5).normal(scale=0.1, size=X.shape)
    deterministic = SpreadFactorAnalysis(2, noise_variance=0.0).fit(X)
    noisy = SpreadFactorAnalysis(2, noise_variance=0.01).fit(X)

    def residual_fraction(model):
        samples = model.sample(200, random_state=0) - model.mean_
        basis = linalg.orth(model.components_.T)
        residual = samples - samples @ basis @ basis.T
        return linalg.norm(residual) / linalg.norm(samples)

    assert residual_fraction(deterministic) < 1e-13
    # With noise 0.01 the 3 off-subspace directions hold a clear fraction.
    assert residual_fraction(noisy) > 1e-3


def test_deterministic_transform_inverts_the_generator_on_its_subspace():
    theta = np.random.default_rng(6).standard_normal((3, 7))
    X = make_line(100, theta, random_state=1).data + 2.0
    model = SpreadFactorAnalysis(3).fit(X)
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, atol=1e-10)


def test_grid_search_over_n_components_picks_true_dimension():
    # Data from a factor model with K = 3 of D = 10 and unequal noise; the
    # learned diagonal noise lets the held-out spread likelihood tell K apart.
    X, _, noise = _factor_data(500, 10, 3, seed=0, noise_range=(0.05, 0.6))
    search = GridSearchCV(
        Pipeline(
            [
                ("scale", StandardScaler()),
                ("factors", SpreadFactorAnalysis(noise_variance="diagonal")),
            ]
        ),
        {"factors__n_components": range(1, 7)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X)
    assert search.best_params_["factors__n_components"] == 3


@pytest.mark.parametrize("offset", [1.0, 1e6])
def test_fit_is_translation_invariant_far_from_the_origin(offset):
    # Far from the origin X^T X / N - mu mu^T would lose about 12 digits
    # (1e12 / 1): the second moments must then be centred first.
    X, _, _ = _factor_data(1000, 5, 2, seed=15)
    X -= X.mean(axis=0)
    reference = SpreadFactorAnalysis(2).fit(X)
    shifted = SpreadFactorAnalysis(2).fit(X + offset)
    np.testing.assert_allclose(shifted.components_, reference.components_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(shifted.loglike_, reference.loglike_, rtol=1e-10)


def test_pickle_round_trip_gives_identical_score_samples():
    X, _, _ = _factor_data(200, 5, 2, seed=7)
    model = SpreadFactorAnalysis(2, noise_variance="diagonal").fit(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))


def test_same_random_state_gives_bit_identical_fit():
    X, _, _ = _factor_data(300, 20, 3, seed=8)
    fits = [
        SpreadFactorAnalysis(
            3, noise_variance="diagonal", svd_method="randomized", random_state=0
        ).fit(X)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].components_, fits[1].components_)
    np.testing.assert_array_equal(fits[0].noise_variance_, fits[1].noise_variance_)


def test_randomized_eigensolver_agrees_with_lapack():
    X, _, _ = _factor_data(300, 20, 3, seed=8)
    exact = SpreadFactorAnalysis(3, noise_variance="diagonal").fit(X)
    randomized = SpreadFactorAnalysis(
        3, noise_variance="diagonal", svd_method="randomized", random_state=0
    ).fit(X)
    np.testing.assert_allclose(randomized.score(X), exact.score(X), rtol=1e-6)


@pytest.mark.parametrize("max_iter", [1, 2])
def test_spread_em_warns_when_it_stops_at_max_iter(max_iter):
    X, _, _ = _factor_data(200, 5, 2, seed=9)
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        SpreadFactorAnalysis(2, noise_variance="diagonal", max_iter=max_iter, tol=0.0).fit(X)


def test_spread_object_sets_the_scale():
    X, _, _ = _factor_data(100, 4, 2, seed=10)
    model = SpreadFactorAnalysis(2, spread=GaussianSpread(0.3), spread_scale=5.0).fit(X)
    assert model.spread_scale_ == 0.3
    assert SpreadFactorAnalysis(2, spread=None, noise_variance=0.1).fit(X).spread_scale_ is None


@pytest.mark.parametrize(
    "params, message",
    [
        ({"spread": None, "noise_variance": 0.0}, "no likelihood"),
        # The constraints refuse what fit cannot do (a Laplace-spread Gaussian
        # has no closed-form likelihood), naming the parameter.
        ({"spread": "laplace"}, "'spread' parameter"),
        ({"spread": LaplaceSpread(1.0), "noise_variance": "diagonal"}, "'spread' parameter"),
        ({"n_components": 5}, "at most n_features"),
    ],
)
def test_models_without_a_closed_form_spread_likelihood_are_refused(params, message):
    X, _, _ = _factor_data(50, 4, 2, seed=11)
    with pytest.raises(ValueError, match=message):
        SpreadFactorAnalysis(**params).fit(X)


def test_bad_input_gets_a_clear_error():
    X, _, _ = _factor_data(50, 4, 2, seed=12)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SpreadFactorAnalysis(2).fit(X)
    model = SpreadFactorAnalysis(2).fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match="n_components=2"):
        model.inverse_transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(0)
    # The deterministic model with K < D has a singular covariance.
    with pytest.raises(ValueError, match="singular"):
        model.get_precision()


def test_precision_inverts_covariance_of_a_noisy_model():
    X, _, _ = _factor_data(100, 4, 2, seed=13)
    model = SpreadFactorAnalysis(2, noise_variance="diagonal").fit(X)
    np.testing.assert_allclose(
        model.get_precision() @ model.get_covariance(), np.eye(4), atol=1e-10
    )


def test_verbose_reports_each_iteration(capsys):
    X, _, _ = _factor_data(100, 4, 2, seed=14)
    model = SpreadFactorAnalysis(2, noise_variance="diagonal", verbose=1).fit(X)
    assert capsys.readouterr().out.count("iteration") == model.n_iter_


@parametrize_with_checks(
    [
        SpreadFactorAnalysis(),
        SpreadFactorAnalysis(noise_variance="diagonal"),
        SpreadFactorAnalysis(spread=None, noise_variance=0.5),
        SpreadFactorAnalysis(spread=None, noise_variance="diagonal"),
        SpreadFactorAnalysis(
            spread=GaussianSpread(0.5),
            noise_variance=0.1,
            svd_method="randomized",
            random_state=0,
        ),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("noise_variance", [0.0, "diagonal"])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e153), (np.float32, 1e20)])
def test_values_whose_squares_overflow_are_a_clear_error(noise_variance, dtype, scale):
    X = (np.random.default_rng(0).standard_normal((300, 4)) * scale).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own overflow
        with pytest.raises(ValueError, match="rescale X"):
            SpreadFactorAnalysis(2, noise_variance=noise_variance).fit(X)


def test_component_signs_do_not_depend_on_the_memory_layout():
    # Audit: make_ica's symmetric loadings tie at +-1.2144 in a row, and
    # rounding picked the deciding entry by the input's layout, flipping
    # the row (and transform) between C and Fortran order or a DataFrame.
    X = make_ica(2000, n_features=4, n_components=2, random_state=0).data
    c_order = SpreadFactorAnalysis(2).fit(X).components_
    f_order = SpreadFactorAnalysis(2).fit(np.asfortranarray(X)).components_
    np.testing.assert_allclose(c_order, f_order, atol=1e-10)
