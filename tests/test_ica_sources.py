"""SpreadICA's learned source densities (source='adaptive')."""

import warnings

import numpy as np
import pytest
from scipy.stats import kurtosis, skew
from sklearn.exceptions import ConvergenceWarning

from skspread import SpreadICA
from skspread.datasets import make_ica
from skspread.metrics import amari_distance


def _standardised(sources):
    return (sources - sources.mean(axis=0)) / sources.std(axis=0)


def _source_correlations(estimated, true):
    """For each true source, the largest |correlation| with an estimated one."""
    n_true = true.shape[1]
    correlations = np.abs(np.corrcoef(true.T, estimated.T)[:n_true, n_true:])
    return correlations.max(axis=1)


def _non_square_case(seed):
    """scikit-learn's test_fastica.py::test_non_square_fastica, noise-free.

    A sine and a binary wave, mixed into 6 observations by a Gaussian matrix,
    each observation centred and scaled.
    """
    rng = np.random.RandomState(seed)
    n_samples = 1000
    time = np.linspace(0, 100, n_samples)
    sources = _standardised(np.c_[np.sin(time), np.ceil(np.sin(np.pi * time))])
    mixed = sources @ rng.randn(6, 2).T
    return _standardised(mixed), sources


def _check_non_square(seed):
    X, sources = _non_square_case(seed)
    ica = SpreadICA(2, source="adaptive", random_state=seed).fit(X)
    assert ica.source_density_ is not None
    assert np.all(_source_correlations(ica.transform(X), sources) >= 0.99)


@pytest.mark.parametrize("seed", range(3))
def test_non_square_sine_and_binary_wave_recovered(seed):
    _check_non_square(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 10))
def test_non_square_sine_and_binary_wave_recovered_more_seeds(seed):
    # With the three seeds above, the 10 seeds (correlation >= 0.99).
    _check_non_square(seed)


def _family_sources(family, n_samples, rng):
    """Two independent unit-variance sources of one family."""
    if family == "uniform":
        sources = rng.uniform(-1, 1, size=(n_samples, 2))
    elif family == "sine":
        time = np.linspace(0, 60, n_samples)
        sources = np.c_[np.sin(time), np.sin(np.sqrt(2.0) * time + 1.0)]
    elif family == "laplace":
        sources = rng.laplace(size=(n_samples, 2))
    elif family == "skewed":
        sources = rng.exponential(size=(n_samples, 2))
    else:  # bimodal
        modes = rng.choice([-2.0, 2.0], size=(n_samples, 2))
        sources = modes + 0.5 * rng.standard_normal((n_samples, 2))
    return _standardised(sources)


@pytest.mark.parametrize("family", ["uniform", "sine", "laplace", "skewed", "bimodal"])
def test_each_source_family_recovered_and_modelled(family):
    # Two sources of one family, noise-free in three observations, N = 1500:
    # the fit recovers both, and the learned densities have the family's shape.
    rng = np.random.RandomState(0)
    n_samples = 1500
    sources = _family_sources(family, n_samples, rng)
    X = sources @ rng.randn(3, 2).T
    ica = SpreadICA(2, source="adaptive", n_importance_samples=300, random_state=0).fit(X)
    assert np.all(_source_correlations(ica.transform(X), sources) >= 0.98)

    drawn = ica.source_density_.sample(20000, np.random.RandomState(1))
    # Sample moments of 20000 draws: standard errors about 0.02 (mean),
    # 0.01 (variance), 0.02 (skewness) and 0.04 (excess kurtosis) for
    # near-Gaussian shapes, larger for heavy tails.
    np.testing.assert_allclose(drawn.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(drawn.var(axis=0), 1.0, atol=0.05)
    excess = kurtosis(drawn, axis=0)
    if family in ("uniform", "sine", "bimodal"):
        assert np.all(excess < -0.8)
    elif family == "laplace":
        assert np.all(excess > 1.0)
    else:
        # A source's sign is not identifiable: its skewness's is not either.
        assert np.all(np.abs(skew(drawn, axis=0)) > 1.0)


def test_learned_density_beats_a_fixed_prior_where_it_is_wrong():
    # On uniform sources the Laplace prior is the wrong shape: the learned
    # densities give a higher spread log-likelihood to held-out data, their
    # samples are sub-Gaussian, and the unmixing is at least as accurate.
    data = make_ica(3000, 4, 3, source="uniform", random_state=0)
    train, test = data.data[:2000], data.data[2000:]
    common = dict(n_components=3, n_importance_samples=300, random_state=0)
    adaptive = SpreadICA(source="adaptive", **common).fit(train)
    laplace = SpreadICA(source="laplace", **common).fit(train)
    assert laplace.source_density_ is None
    # Held-out mean log-likelihoods over 1000 rows: their standard error is
    # below 0.05, the gap is several times that.
    assert adaptive.score(test) > laplace.score(test) + 0.2
    drawn = adaptive.sample(20000, random_state=0) @ adaptive.components_.T
    assert np.all(kurtosis(drawn, axis=0) < -0.8)


def test_learned_densities_are_normalised_with_unit_variance():
    # Every EM step's density is standardised, converged or not.
    X = make_ica(1000, 3, 2, source="logistic", random_state=0).data
    ica = SpreadICA(2, source="adaptive", n_importance_samples=100, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        density = ica.fit(X).source_density_
    grid = np.linspace(-15, 15, 30001)
    values = np.exp(density.log_density(np.repeat(grid[:, None], 2, axis=1)))
    step = grid[1] - grid[0]
    np.testing.assert_allclose(values.sum(axis=0) * step, 1.0, atol=1e-6)
    np.testing.assert_allclose((values * grid[:, None]).sum(axis=0) * step, 0.0, atol=1e-6)
    np.testing.assert_allclose((values * grid[:, None] ** 2).sum(axis=0) * step, 1.0, atol=1e-3)


def test_learned_density_freezes_without_spread_eq_43_45():
    # Paper eq 43-45 with a learned density: for gamma -> 0 and square A_k the
    # noise-only EM step returns A_k up to its columns' scales (the density
    # is refitted to the same sources), so the unmixing does not move: the
    # Amari distance, blind to scale, is O(tau). With spread it moves.
    X = make_ica(500, 4, 4, random_state=0).data
    start = np.random.default_rng(2).standard_normal((4, 4))
    common = dict(
        source="adaptive", n_importance_samples=200, init=start, max_iter=1, tol=0.0, random_state=0
    )

    def one_step(**params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = SpreadICA(4, **common, **params).fit(X)
        assert model.source_density_ is not None
        return amari_distance(model.components_, start)

    for tau in [1e-3, 1e-5]:
        assert one_step(spread=None, noise_variance=tau**2) < 50 * tau * np.linalg.cond(start)
    assert one_step(spread_scale=1.0) > 0.05


def test_score_samples_keeps_falling_for_outliers_beyond_the_density_grid():
    # The learned densities are tabulated over +-20 standard deviations; an
    # outlier's sources beyond that take the exact mixture, so that its
    # log-likelihood keeps falling as it moves out (it levelled off near -412).
    data = make_ica(1000, 6, 6, noise_std=0.1, random_state=0).data
    model = SpreadICA(n_importance_samples=64, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data)
    row = data[:1] - model.mean_
    scores = [model.score_samples(model.mean_ + c * row)[0] for c in (10, 100, 1e3, 1e6)]
    assert np.all(np.diff(scores) < 0)
    # Quadratic in the distance: ten times farther, over ten times lower.
    assert scores[-2] < 10 * scores[-3] and scores[-1] < -1e9
