"""SpreadICA's noise-free path: the exact likelihood where the data leave no room for noise."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skspread import SpreadICA
from skspread._testing import fit_noise_free, ica_module, initial_mixing, principal_subspace
from skspread._testing import set_aside_because
from skspread.datasets import make_ica
from skspread.metrics import amari_distance, mixing_error
from skspread.spread import GaussianSpread


def _laplace_uniform(seed, noise_std, n_samples=4000, n_features=6):
    """3 Laplace + 3 uniform unit-variance sources, a D x 6 sign mixing (the benchmark's)."""
    rng = np.random.RandomState(seed)
    while True:
        mixing = rng.choice([-1.0, 1.0], size=(n_features, 6))
        if np.linalg.cond(mixing) < 1e3:
            break
    sources = np.hstack(
        [
            rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=(n_samples, 3)),
            rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n_samples, 3)),
        ]
    )
    X = sources @ mixing.T + noise_std * rng.standard_normal((n_samples, n_features))
    return X, mixing


def _set_aside(X, n_components, seed=0):
    """Why the noise-free fit of X is set aside for spread-EM ('' if it is kept)."""
    X_centred = X - X.mean(axis=0)
    subspace = principal_subspace(X_centred, n_components)
    start = initial_mixing("fastica", X_centred, n_components, 0.0, np.random.RandomState(seed))
    fit = fit_noise_free(X_centred, start, subspace.basis, subspace.variances, 500, 3e-3)
    return set_aside_because(fit, X.shape[1], subspace)


def test_noise_free_data_are_fitted_by_the_exact_likelihood():
    # Noise-free data with more features than sources span exactly K
    # directions: the fit takes a few quasi-Newton steps, no EM, learns zero
    # noise and recovers the mixing. Its error is the estimator's sampling
    # error, O(1 / sqrt(N)) = 0.02 at N = 2000; spread-EM's is compared.
    data = make_ica(2000, 6, 3, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(3, random_state=0).fit(data.data)
    assert model.noise_variance_ == 0.0
    assert model.n_iter_ <= 20
    assert len(model.loglike_) == model.n_iter_
    # Three learned densities: transform and score_samples are exact, no draws.
    assert model.n_importance_samples_ == 0
    assert model.effective_sample_size_ == np.inf
    error = mixing_error(model.mixing_, data.mixing)
    assert error < 0.06
    spread_em = SpreadICA(3, noise_variance=0.0, n_importance_samples=200, random_state=0)
    with warnings.catch_warnings():
        # That EM freezes near its fixed point (it warns so): see test_ica.py.
        warnings.simplefilter("ignore", ConvergenceWarning)
        spread_em.fit(data.data)
    assert error < 1.1 * mixing_error(spread_em.mixing_, data.mixing)
    # 'diagonal' learns one zero per feature.
    diagonal = SpreadICA(3, noise_variance="diagonal", random_state=0).fit(data.data)
    np.testing.assert_array_equal(diagonal.noise_variance_, np.zeros(6))
    np.testing.assert_allclose(diagonal.mixing_, model.mixing_)


def test_noise_free_path_is_reproducible_and_equivariant_to_units():
    # Whitening and the relative subspace test make the fit on c X the fit
    # on X scaled by c, from 1e-6 to 1e6.
    X = make_ica(1000, 4, 2, source="uniform", random_state=0).data
    reference = SpreadICA(2, random_state=0).fit(X)
    again = SpreadICA(2, random_state=0).fit(X)
    np.testing.assert_array_equal(again.mixing_, reference.mixing_)
    for scale in [1e-6, 1e6]:
        scaled = SpreadICA(2, random_state=0).fit(scale * X)
        assert scaled.noise_variance_ == 0.0
        assert scaled.n_iter_ == reference.n_iter_
        np.testing.assert_allclose(
            scaled.mixing_ / scale, reference.mixing_, rtol=1e-6, atol=1e-9
        )
        # The density lives on the 2-dimensional subspace: log p shifts by 2 log c.
        shifted = np.array(reference.loglike_) - 2 * np.log(scale)
        np.testing.assert_allclose(scaled.loglike_, shifted)


def test_noise_free_path_warns_at_max_iter_and_keeps_float32():
    X = make_ica(1000, 3, 2, random_state=0).data.astype(np.float32)
    with pytest.warns(ConvergenceWarning, match="noise-free path.*Increase max_iter"):
        model = SpreadICA(2, max_iter=1, tol=0.0, random_state=0).fit(X)
    assert model.n_iter_ == 1
    assert model.mixing_.dtype == np.float32
    assert model.transform(X).dtype == np.float32


@pytest.mark.parametrize("seed", range(3))
def test_score_test_finds_noise_in_square_mixtures(seed):
    # Square mixtures leave no direction outside the sources, so only the
    # score test tells noise from none. At gamma = 0.3 (a noise variance 1.5%
    # of the data's) its statistic was 2.5-4.3 standard errors on seeds 0-2.
    # At gamma = 1 the learned densities turn near Gaussian and the
    # statistic falls back to 1.0-2.0, but its 95% bound on gamma^2 (9% of
    # the weakest principal variance and more) does not rule the noise out.
    # Noise-free, the statistic was -0.9 to 0.9 and the bound 0.8-2.6% on
    # seeds 0-4 (the threshold is 5%).
    noisy, _ = _laplace_uniform(seed, 0.3)
    assert "score test finds noise" in _set_aside(noisy, 6, seed)
    very_noisy, _ = _laplace_uniform(seed, 1.0)
    assert _set_aside(very_noisy, 6, seed)
    noise_free, _ = _laplace_uniform(seed, 0.0)
    assert _set_aside(noise_free, 6, seed) == ""


def test_sources_beyond_the_density_grid_are_left_to_spread_em():
    # A source whose rare values lie 27 standard deviations out (4 ones of a
    # Bernoulli with p = 0.001) cannot be modelled by the densities' grid
    # (20): the noise-free fit is set aside, whether the model is square or
    # has more features than sources.
    rng = np.random.RandomState(0)
    sources = np.c_[rng.binomial(1, 0.001, 3000), rng.uniform(-1, 1, 3000)]
    X = sources @ rng.randn(3, 2).T
    assert "grid" in _set_aside(X, 2)
    assert "grid" in _set_aside(X[:, :2], 2)


def test_ill_conditioned_data_do_not_take_the_noise_free_path():
    # A direction of rounding-level variance cannot be whitened: spread-EM
    # fits (and says so when the mixing turns rank deficient).
    rng = np.random.RandomState(0)
    X = rng.randn(500, 2) @ np.diag([1.0, 1e-9])
    assert principal_subspace(X - X.mean(axis=0), 2) is None


@pytest.mark.parametrize("noise_std", [0.3, 1.0])
def test_square_noisy_data_are_fitted_by_spread_em(noise_std):
    # Where the score test finds noise or cannot rule it out, spread-EM
    # learns it (a few iterations suffice to show the path taken: the noise
    # is not zero).
    X, _ = _laplace_uniform(0, noise_std)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SpreadICA(6, n_importance_samples=50, max_iter=10, random_state=0).fit(X)
    assert model.noise_variance_ > 0.0


def test_noisy_data_are_fitted_by_spread_em_from_the_noise_free_fit():
    # The benchmark's '3 Laplace + 3 uniform 12x6, gamma 0.5', seed 1: the
    # data vary outside the principal subspace, so spread-EM learns the
    # noise, from the noise-free fit's mixing shrunk to the signal. From
    # FastICA's start it took 43 EM evaluations to Amari 0.050; from the
    # noise-free fit, 6 to 0.052 (FastICA 0.064). With D - K = 6 noise-only
    # directions the learned gamma^2 has a relative standard error of
    # sqrt(2 / (N (D - K))) = 0.9%; allow 4 of them.
    X, mixing = _laplace_uniform(1, 0.5, n_features=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(6, random_state=1).fit(X)
    assert model.n_iter_ <= 12
    assert abs(model.noise_variance_ / 0.25 - 1.0) < 4 * np.sqrt(2.0 / (4000 * 6))
    assert amari_distance(np.linalg.pinv(model.mixing_), mixing) < 0.06


def test_noise_free_square_mixture_beats_fastica_without_warning():
    # The benchmark's '3 Laplace + 3 uniform 6x6, gamma 0', seed 3, on which
    # spread-EM stopped on the noise ridge (Amari 0.18, warned) before it
    # learned to resume: the exact likelihood gives 0.048 (FastICA 0.056).
    X, mixing = _laplace_uniform(3, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(6, random_state=3).fit(X)
    assert model.noise_variance_ == 0.0
    assert amari_distance(np.linalg.pinv(model.mixing_), mixing) < 0.056


def test_noise_free_path_only_for_learned_noise_and_densities(monkeypatch):
    # A fixed noise, a fixed prior or no spread keep spread-EM (the
    # paper's estimator and its baselines).
    X = make_ica(500, 3, 2, random_state=0).data
    asked = []
    original = ica_module._principal_subspace

    def spy(X_centred, n_components):
        asked.append(n_components)
        return original(X_centred, n_components)

    monkeypatch.setattr(ica_module, "_principal_subspace", spy)
    common = dict(n_importance_samples=20, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        SpreadICA(2, noise_variance=0.0, **common).fit(X)
        SpreadICA(2, source="laplace", **common).fit(X)
        SpreadICA(2, spread=None, **common).fit(X)
        assert asked == []
        SpreadICA(2, **common).fit(X)
    assert asked == [2]


def _laplace_square(n_samples=2000, n_sources=4, seed=0):
    rng = np.random.default_rng(seed)
    sources = rng.laplace(size=(n_samples, n_sources))
    sources = (sources - sources.mean(axis=0)) / sources.std(axis=0)
    mixing = rng.normal(size=(n_sources, n_sources))
    return sources @ mixing.T, mixing


@pytest.mark.parametrize(
    "units_range, noise_variance", [(1.0, "isotropic"), (1e4, "isotropic"), (1e4, "diagonal")]
)
def test_noise_free_fit_is_kept_where_the_score_test_leaves_the_noise_open(
    units_range, noise_variance
):
    # 2000 noise-free rows of 4 Laplace sources: the score test neither finds
    # noise nor rules it out (bound 5.3-6.0% of the weakest principal
    # variance), so spread-EM fits; it crawled to a frozen warning (Amari
    # 0.061 after 338 evaluations) and, with features in units 1e4 apart,
    # broke the fit (1.106). The noise-free fit (0.053) is the likelier model.
    X, mixing = _laplace_square()
    units = np.logspace(-2, 2, 4) ** (np.log10(units_range) / 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = SpreadICA(noise_variance=noise_variance, random_state=0).fit(X * units)
    assert np.all(model.noise_variance_ == 0.0)
    error = amari_distance(np.linalg.pinv(model.mixing_), mixing * units[:, None])
    assert error < 0.06  # FastICA: 0.070


def test_features_in_units_far_apart_warn_to_standardise():
    # The spread has one scale for all features: columns a factor 5e7 apart
    # gave an Amari distance of 0.48 in an audit (FastICA 0.003). Over 1e7
    # a fit says to standardise; spans of 1e6 were fitted well and do not warn.
    X = make_ica(1000, 4, 2, random_state=0).data
    with pytest.warns(UserWarning, match="standardise them first"):
        SpreadICA(2, random_state=0, max_iter=5).fit(X * [1e-4, 1e4, 1.0, 1.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SpreadICA(2, random_state=0).fit(X * [1e-3, 1e3, 1.0, 1.0])
    assert not [w for w in caught if "standardise" in str(w.message)]


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_frozen_fit_with_a_vanishing_learned_noise_advises_fixing_it_at_zero(noise):
    # A learned noise that ended near zero while EM crawled: fixing it at
    # zero converged where a lower tol drifted (an audit's spike train).
    from types import SimpleNamespace

    from skspread._testing import ica_convergence_module as convergence
    from skspread._testing import ica_em_module as em

    spread = GaussianSpread(0.1)
    stalled = em._EMResult(
        np.eye(2), spread.variance + noise, "laplace", [-3.0], 100.0, False, True, 0.9995
    )
    estimator = SimpleNamespace(
        tol=3e-3, max_iter=500, n_importance_samples_=0, noise_variance="isotropic"
    )
    with pytest.warns(ConvergenceWarning, match="frozen") as caught:
        convergence._warn_unless_converged(stalled, spread, estimator, np.eye(2))
    advised = "noise_variance=0.0" in str(caught[0].message)
    assert advised is (noise == 0.0)


def test_a_constant_feature_in_a_block_is_not_taken_for_other_units():
    # Review: a later partial_fit block with a stuck sensor (one constant
    # column) warned that the features' scales span 9e14.
    X = make_ica(1400, 4, 2, noise_std=0.1, random_state=0).data
    model = SpreadICA(2, random_state=0).partial_fit(X[:700])
    block = X[700:].copy()
    block[:, 0] = 3.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.partial_fit(block)
    assert not [w for w in caught if "standardise" in str(w.message)]
