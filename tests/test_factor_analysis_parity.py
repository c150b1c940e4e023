"""SpreadFactorAnalysis(spread=None, noise_variance='diagonal') is FactorAnalysis.

scikit-learn's own test_factor_analysis assertions, adapted, and parity of
``rotation``, ``noise_variance_init``, ``loglike_`` and ``n_components=0``;
rotation and the starting noise applied to spread fits.
"""

import warnings
from itertools import combinations

import numpy as np
import pytest
from scipy import stats
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

from skspread import SpreadFactorAnalysis
from skspread._testing import rotate as _rotate

TIGHT = dict(tol=1e-13, max_iter=100_000)


def _sklearn_test_data(seed):
    """The data of scikit-learn's test_factor_analysis: 20 x 5, three factors, gamma noise."""
    rng = np.random.RandomState(seed)
    n_samples, n_features, n_components = 20, 5, 3
    W = rng.randn(n_components, n_features)
    h = rng.randn(n_samples, n_components)
    noise = rng.gamma(1, size=n_features) * rng.randn(n_samples, n_features)
    return h @ W + noise, W


def _well_posed_data(seed, n_samples=500, n_features=10, n_components=2):
    """Factor data with every noise variance well inside its bound, where EM converges fast."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_samples, n_components)) @ rng.standard_normal(
        (n_components, n_features)
    ) + rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 1.0, n_features)


def _factor_analysis(**params):
    return SpreadFactorAnalysis(spread=None, noise_variance="diagonal", **params)


def _match_signs(estimate, reference):
    """Flip rows of ``estimate`` to the sign of the matching rows of ``reference``."""
    signs = np.sign(np.sum(estimate * reference, axis=1))
    return estimate * signs[:, np.newaxis]


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_sklearn_factor_analysis_assertions_hold(seed):
    X, W = _sklearn_test_data(seed)
    n_samples, n_features = X.shape
    n_components = 3
    fits = []
    for method in ["randomized", "lapack"]:
        fa = _factor_analysis(n_components=n_components, svd_method=method, random_state=0)
        fa.fit(X)
        fits.append(fa)
        assert fa.transform(X).shape == (n_samples, n_components)
        np.testing.assert_almost_equal(fa.loglike_[-1], fa.score_samples(X).sum())
        np.testing.assert_almost_equal(fa.score_samples(X).mean(), fa.score(X))
        # EM never decreases the likelihood (scikit-learn asserts only that it changes).
        loglike = np.asarray(fa.loglike_)
        assert np.all(np.diff(loglike) >= -1e-12 * np.abs(loglike[1:]))
        model_covariance = fa.get_covariance()
        sample_covariance = np.cov(X, rowvar=False, bias=True)
        assert np.sum(np.abs(sample_covariance - model_covariance)) / W.size < 0.2
        with pytest.raises(ValueError, match="noise_variance_init"):
            _factor_analysis(
                n_components=n_components, noise_variance_init=np.ones(n_features)
            ).fit(X[:, :4])

    # Where EM crawls (rate 0.997 on seed 1's 20 rows), the two SVDs' rounding
    # may move the stop by an iteration: then both run to the same count.
    common = min(len(fits[0].loglike_), len(fits[1].loglike_))
    assert max(len(fits[0].loglike_), len(fits[1].loglike_)) - common <= 1
    if len(fits[0].loglike_) != len(fits[1].loglike_):
        fits = [
            _factor_analysis(
                n_components=n_components, svd_method=method, random_state=0,
                max_iter=common, tol=0.0,
            ).fit(X)
            for method in ["randomized", "lapack"]
        ]
    for name in ["loglike_", "components_", "noise_variance_"]:
        np.testing.assert_almost_equal(
            np.abs(getattr(fits[0], name)), np.abs(getattr(fits[1], name))
        )

    with pytest.warns(ConvergenceWarning):
        _factor_analysis(n_components=n_components, max_iter=1).fit(X)

    for n_components in [0, 2, n_features]:
        fa = _factor_analysis(n_components=n_components).fit(X)
        np.testing.assert_array_almost_equal(
            fa.get_covariance() @ fa.get_precision(), np.eye(n_features), 12
        )

    transformed, covariances = {}, {}
    for rotation in (None, "varimax", "quartimax"):
        fa = _factor_analysis(n_components=2, rotation=rotation)
        transformed[rotation] = fa.fit_transform(X)
        covariances[rotation] = fa.get_covariance()
    for first, second in combinations([None, "varimax", "quartimax"], 2):
        assert not np.allclose(transformed[first], transformed[second])
        # scikit-learn allows atol=3; a rotation leaves the model covariance exact.
        np.testing.assert_allclose(covariances[first], covariances[second], rtol=1e-10)


def test_varimax_matches_r_psych_principal():
    # The values of scikit-learn's test, from R's psych::principal(rotate="varimax").
    factors = np.array(
        [
            [0.89421016, -0.35854928, -0.27770122, 0.03773647],
            [-0.45081822, -0.89132754, 0.0932195, -0.01787973],
            [0.99500666, -0.02031465, 0.05426497, -0.11539407],
            [0.96822861, -0.06299656, 0.24411001, 0.07540887],
        ]
    )
    r_solution = np.array([[0.962, 0.052], [-0.141, 0.989], [0.949, -0.300], [0.937, -0.251]])
    rotated = _rotate(factors[:, :2].T, "varimax").T
    np.testing.assert_array_almost_equal(np.abs(rotated), np.abs(r_solution), decimal=3)


@pytest.mark.parametrize("rotation", [None, "varimax", "quartimax"])
def test_rotation_and_loglike_reproduce_factor_analysis(rotation):
    # No noise variance near its bound (where both EMs crawl): tight
    # tolerances then stop both at the maximum.
    X = _well_posed_data(3)
    reference = FactorAnalysis(2, svd_method="lapack", rotation=rotation, **TIGHT).fit(X)
    ours = _factor_analysis(n_components=2, rotation=rotation, **TIGHT).fit(X)
    np.testing.assert_allclose(ours.loglike_[-1], reference.loglike_[-1], rtol=1e-9)
    np.testing.assert_allclose(
        _match_signs(ours.components_, reference.components_),
        reference.components_,
        atol=1e-5 * np.abs(reference.components_).max(),
    )
    np.testing.assert_allclose(ours.noise_variance_, reference.noise_variance_, rtol=1e-5)


def test_noise_variance_init_gives_factor_analysis_iterates():
    # From the same start, the spread-EM without spread takes FactorAnalysis's
    # steps: the log-likelihood of every iteration agrees.
    X, _ = _sklearn_test_data(5)
    start = np.linspace(0.5, 2.0, X.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = FactorAnalysis(
            3, svd_method="lapack", noise_variance_init=start, max_iter=6, tol=0.0
        ).fit(X)
        ours = _factor_analysis(n_components=3, noise_variance_init=start, max_iter=6, tol=0.0)
        ours.fit(X)
    assert len(ours.loglike_) == len(reference.loglike_) == 6
    np.testing.assert_allclose(ours.loglike_, reference.loglike_, rtol=1e-10)
    np.testing.assert_allclose(ours.noise_variance_, reference.noise_variance_, rtol=1e-8)


@pytest.mark.parametrize("spread", [None, "gaussian"])
def test_noise_variance_init_starts_the_learned_noise_and_is_checked(spread):
    X = _well_posed_data(6)
    n_features = X.shape[1]
    default = SpreadFactorAnalysis(2, spread=spread, noise_variance="diagonal", **TIGHT).fit(X)
    started = SpreadFactorAnalysis(
        2, spread=spread, noise_variance="diagonal", noise_variance_init=np.ones(n_features),
        **TIGHT,
    ).fit(X)
    # A different start, the same maximum.
    np.testing.assert_allclose(started.loglike_[-1], default.loglike_[-1], rtol=1e-9)
    with pytest.warns(ConvergenceWarning):
        one_step = SpreadFactorAnalysis(
            2, spread=spread, noise_variance="diagonal",
            noise_variance_init=np.ones(n_features), max_iter=1, tol=0.0,
        ).fit(X)
    assert one_step.loglike_[0] != default.loglike_[0]

    for bad, message in [
        (np.ones(n_features + 1), "one starting variance per feature"),
        (-np.ones(n_features), "non-negative"),
        (np.full(n_features, np.nan), "finite"),
    ]:
        with pytest.raises(ValueError, match=message):
            SpreadFactorAnalysis(
                2, spread=spread, noise_variance="diagonal", noise_variance_init=bad
            ).fit(X)
    # A fixed noise has nothing to start: refused, not ignored.
    with pytest.raises(ValueError, match="only with noise_variance='diagonal'"):
        SpreadFactorAnalysis(
            2, spread=spread, noise_variance=0.5, noise_variance_init=np.ones(n_features)
        ).fit(X)


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(noise_variance="diagonal"),
        dict(noise_variance=0.3),
        dict(spread=None, noise_variance=0.3),
        dict(svd_method="randomized", random_state=0, noise_variance="diagonal"),
    ],
)
@pytest.mark.parametrize("rotation", ["varimax", "quartimax"])
def test_rotation_keeps_every_spread_likelihood(params, rotation):
    # The spread likelihood depends on W only through W^T W.
    X, _ = _sklearn_test_data(7)
    plain = SpreadFactorAnalysis(3, **params).fit(X)
    rotated = SpreadFactorAnalysis(3, rotation=rotation, **params).fit(X)
    np.testing.assert_allclose(rotated.score_samples(X), plain.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(rotated.loglike_, plain.loglike_, rtol=1e-12)
    # The rotated loadings are an orthogonal transform of the plain ones.
    transform = rotated.components_ @ np.linalg.pinv(plain.components_)
    np.testing.assert_allclose(transform @ transform.T, np.eye(3), atol=1e-8)
    np.testing.assert_allclose(transform @ plain.components_, rotated.components_, atol=1e-8)


@pytest.mark.parametrize(
    "params", [dict(), dict(noise_variance="diagonal"), dict(spread=None, noise_variance=0.3)]
)
def test_zero_components_fit_the_noise_alone(params):
    X, _ = _sklearn_test_data(8)
    model = SpreadFactorAnalysis(0, **params).fit(X)
    assert model.components_.shape == (0, X.shape[1])
    assert model.transform(X).shape == (len(X), 0)
    np.testing.assert_allclose(model.loglike_[-1], model.score_samples(X).sum(), rtol=1e-10)


def test_zero_components_without_spread_is_factor_analysis_independent_gaussians():
    X, _ = _sklearn_test_data(9)
    reference = FactorAnalysis(0, svd_method="lapack").fit(X)
    model = _factor_analysis(n_components=0).fit(X)
    np.testing.assert_allclose(model.noise_variance_, X.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.noise_variance_, reference.noise_variance_, rtol=1e-10)
    independent = stats.norm(X.mean(axis=0), np.sqrt(X.var(axis=0))).logpdf(X).sum(axis=1)
    np.testing.assert_allclose(model.score_samples(X), independent, rtol=1e-10)
    np.testing.assert_allclose(model.loglike_[-1], reference.loglike_[-1], rtol=1e-10)
