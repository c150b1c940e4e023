"""Tests of SpreadICA: paper section 4.1 (eq 43-56, figure 4).

The estimator is tested through its public API; the importance-sampling
E-step is tested directly, through skspread._testing.
"""

import pickle
import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal, norm
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from skspread import SpreadICA
from skspread._testing import LIKELIHOOD_DRAW_SHARE as _LIKELIHOOD_DRAW_SHARE
from skspread._testing import Proposal as _Proposal
from skspread._testing import importance_posterior as _importance_posterior
from skspread._testing import source_log_density, start_density
from skspread.datasets import make_ica
from skspread.metrics import amari_distance, mixing_error
from skspread.spread import GaussianSpread, LaplaceSpread


@parametrize_with_checks(
    [
        SpreadICA(n_importance_samples=20, max_iter=5, random_state=0),
        SpreadICA(
            spread=None,
            noise_variance=0.1,
            source="logistic",
            n_importance_samples=20,
            max_iter=5,
            init="pca",
            random_state=0,
        ),
    ]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _direct_weights(y, proposal, eps, source):
    """Draws (S, K) and unnormalised weights of one row, from the mixture densities.

    The first share of ``eps`` feeds N(m, V), the rest N((I - W) m, W); each
    draw's weight is prod_k p(z_k) N(z | m, V) / q(z) with q the mixture
    density at the draws' shares, evaluated here with scipy's densities.
    """
    m = y @ proposal.projector
    V = proposal.cholesky @ proposal.cholesky.T
    W = proposal.narrow_cholesky @ proposal.narrow_cholesky.T
    n_wide = max(1, round(_LIKELIHOOD_DRAW_SHARE * len(eps)))
    share = n_wide / len(eps)
    Z = np.vstack(
        [
            m + eps[:n_wide] @ proposal.cholesky.T,
            m - W @ m + eps[n_wide:] @ proposal.narrow_cholesky.T,
        ]
    )
    likelihood_factor = multivariate_normal.pdf(Z, m, V)
    mixture = share * likelihood_factor + (1 - share) * multivariate_normal.pdf(Z, m - W @ m, W)
    if isinstance(source, str):
        log_prior = source_log_density(source, Z).reshape(len(Z), -1).sum(axis=1)
    else:
        log_prior = source.log_density(Z).sum(axis=1)
    return Z, np.exp(log_prior) * likelihood_factor / mixture


@pytest.mark.parametrize("source", ["laplace", "logistic"])
def test_mixture_moments_equal_direct_importance_sums_spec_4(source):
    # Spec section 4 with the defensive mixture proposal: the factorised
    # E-step (shared draws, per-row weighted sums, no (N, S, K) tensor) must
    # equal the plain weighted sums over explicit draws, and log p(y) the
    # log-normaliser plus the log mean weight. A weak third column makes V
    # wider than the prior there, where the two components differ.
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((6, 3))
    mixing[:, 2] *= 0.1
    Y = rng.standard_normal((40, 6))
    proposal = _Proposal(mixing, total_variance=0.8)
    eps = rng.standard_normal((51, 3))
    log_marginal, mean, second, _ = _importance_posterior(Y, proposal, eps, source, 7, np.float64)
    direct_second = np.zeros((3, 3))
    for y, row_mean, row_log_marginal in zip(Y, mean, log_marginal):
        Z, weights = _direct_weights(y, proposal, eps, source)
        log_normaliser = proposal.log_normaliser(y[None], (y @ proposal.projector)[None])[0]
        np.testing.assert_allclose(
            row_log_marginal, log_normaliser + np.log(weights.mean()), rtol=1e-10
        )
        weights /= weights.sum()
        np.testing.assert_allclose(row_mean, weights @ Z, rtol=1e-10, atol=1e-12)
        direct_second += (Z.T * weights) @ Z
    np.testing.assert_allclose(second, direct_second, rtol=1e-10)


def test_learned_density_moments_equal_direct_sums_and_every_draw_is_binned():
    # A learned density is tabulated on a grid and interpolated in the
    # E-step: its moments equal the plain weighted sums over explicit draws
    # with the mixture's exact log-density, to float32 and interpolation
    # error. Every draw's normalised weight is binned linearly on the grid
    # (the density's M-step), so each source's histogram has mass N and first
    # moment sum_n E[z_k | y_n]. Blocks of 7 rows and one block of all rows
    # give the same statistics: the grid cells are counted from the rows'
    # lowest, not the block's.
    rng = np.random.default_rng(2)
    n_rows = 60
    mixing = rng.standard_normal((5, 3))
    sources = np.column_stack(
        [rng.laplace(size=n_rows), rng.uniform(-1.7, 1.7, n_rows), rng.standard_normal(n_rows)]
    )
    Y = sources @ mixing.T + 0.3 * rng.standard_normal((n_rows, 5))
    density, mixing = start_density("adaptive", Y, mixing)
    proposal = _Proposal(mixing, total_variance=0.09)
    eps = rng.standard_normal((41, 3))
    results = []
    for batch_size in (7, n_rows):
        histogram = density.empty_histogram()
        log_marginal, mean, second, _ = _importance_posterior(
            Y, proposal, eps, density, batch_size, np.float32, histogram=histogram
        )
        results.append((log_marginal, mean, second, histogram))
    for blocked, whole in zip(*results):
        np.testing.assert_allclose(blocked, whole, rtol=1e-12, atol=1e-15)
    log_marginal, mean, second, histogram = results[0]
    direct_second = np.zeros((3, 3))
    for y, row_mean in zip(Y, mean):
        Z, weights = _direct_weights(y, proposal, eps, density)
        weights /= weights.sum()
        np.testing.assert_allclose(row_mean, weights @ Z, rtol=1e-4, atol=1e-5)
        direct_second += (Z.T * weights) @ Z
    np.testing.assert_allclose(second, direct_second, rtol=1e-4)
    np.testing.assert_allclose(histogram.sum(axis=1), n_rows, rtol=1e-6)
    # The density's grid spans +-20 source standard deviations.
    grid = np.linspace(-20.0, 20.0, histogram.shape[1])
    np.testing.assert_allclose(histogram @ grid, mean.sum(axis=0), rtol=1e-5, atol=1e-4)


def test_mixture_weights_are_bounded_by_the_prior():
    # The defensive mixture's point: w <= prod_k p(z_k) / alpha with alpha the
    # share of draws from N(m, V), however wide V is next to the prior.
    rng = np.random.default_rng(1)
    proposal = _Proposal(np.diag([3.0, 0.05]), total_variance=1.0)
    eps = rng.standard_normal((400, 2))
    for y in rng.standard_normal((5, 2)) * 3:
        Z, weights = _direct_weights(y, proposal, eps, "laplace")
        prior = np.exp(source_log_density("laplace", Z).sum(axis=1))
        assert np.all(weights <= prior / _LIKELIHOOD_DRAW_SHARE * (1 + 1e-12))


def test_importance_posterior_matches_quadrature_eq_53_56():
    # K = D = 1, a = 1.5, tau^2 = 0.5: p(z|y) is proportional to
    # N(y | a z, tau^2) Laplace(z) (eq 53); quadrature gives E[z|y] and
    # log p(y) (eq 54). The self-normalised estimate with S draws has standard
    # error about sqrt(Var[z|y] / ESS); allow 4 of them.
    a, tau2, n_draws = 1.5, 0.5, 4000
    ys = np.array([-2.0, -0.3, 0.0, 0.8, 3.0])
    proposal = _Proposal(np.array([[a]]), tau2)
    eps = np.random.default_rng(1).standard_normal((n_draws, 1))
    log_marginal, mean, _, _ = _importance_posterior(
        ys[:, None], proposal, eps, "laplace", 3, np.float64
    )
    for y, estimated_mean, estimated_log_marginal in zip(ys, mean[:, 0], log_marginal):

        def joint(z, power=0, y=y):
            return z**power * norm.pdf(y, a * z, np.sqrt(tau2)) * np.exp(
                source_log_density("laplace", z)
            )

        evidence = integrate.quad(joint, -30, 30, points=[0.0], limit=200)[0]
        post_mean = integrate.quad(joint, -30, 30, args=(1,), points=[0.0])[0] / evidence
        post_var = (
            integrate.quad(joint, -30, 30, args=(2,), points=[0.0])[0] / evidence
            - post_mean**2
        )
        _, weights = _direct_weights(np.array([y]), proposal, eps, "laplace")
        ess = weights.sum() ** 2 / np.sum(weights**2)
        assert abs(estimated_mean - post_mean) < 4 * np.sqrt(post_var / ess)
        relative_se = np.std(weights) / np.mean(weights) / np.sqrt(n_draws)
        assert abs(estimated_log_marginal - np.log(evidence)) < 4 * relative_se


def test_noise_only_em_map_freezes_at_zero_noise_eq_43_45():
    # Eq 43-45: for gamma -> 0 and square invertible A_k, the M-step returns
    # A_{k+1} = S A_k^-T (A_k^-1 S A_k^-T)^-1 = A_k, whatever A_k is. The
    # importance draws move z by O(tau), so the step is O(tau) relative.
    # One EM step is a fit with max_iter=1 from init=A_k.
    X = make_ica(500, 4, 4, random_state=0).data
    start = np.random.default_rng(2).standard_normal((4, 4))
    # The paper's fixed Laplace prior: a learned density also rescales the
    # columns of A at the start (its freezing is tested in test_ica_sources.py).
    common = dict(
        source="laplace", n_importance_samples=200, init=start, max_iter=1, tol=0.0,
        random_state=0,
    )

    def one_step(**params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = SpreadICA(4, **common, **params).fit(X)
        return np.linalg.norm(model.mixing_ - start) / np.linalg.norm(start)

    for tau in [1e-3, 1e-5]:
        assert one_step(spread=None, noise_variance=tau**2) < 50 * tau * np.linalg.cond(start)
    # With spread (tau = sigma = 1) the same map moves A.
    assert one_step(spread_scale=1.0) > 0.05


def test_noise_only_em_freezes_spread_em_recovers_eq_43_45():
    # Paper eq 43-45 and figure 4a at small gamma: D = 10, K = 5, N = 2000,
    # gamma = 0.01, the same PCA start, S_z = 100, 300 EM iterations each.
    # Measured over data seeds 0-9: the noise-only EM ends at 0.61-0.81 on
    # all ten; the spread-EM gets below 0.15 on all ten (0.055-0.138).
    data = make_ica(2000, 10, 5, noise_std=0.01, random_state=0)
    common = dict(
        n_components=5,
        source="laplace",  # the paper's prior, which make_ica's sources follow
        noise_variance=0.01**2,
        n_importance_samples=100,
        init="pca",
        max_iter=300,
        tol=0.0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        noise_only = SpreadICA(spread=None, **common).fit(data.data)
        spread = SpreadICA(**common).fit(data.data)
    covariance = np.cov(data.data, rowvar=False, bias=True)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    start = eigenvectors[:, ::-1][:, :5] * np.sqrt(eigenvalues[::-1][:5] - 0.01**2)
    assert noise_only.n_iter_ == spread.n_iter_ == 300
    assert mixing_error(noise_only.mixing_, data.mixing) > 0.5
    assert mixing_error(spread.mixing_, data.mixing) < 0.15
    # "It does not move": 300 noise-only iterations change A ten times less
    # than the spread ones.
    def moved(model):
        return np.linalg.norm(model.mixing_ - start) / np.linalg.norm(start)

    assert moved(noise_only) < 0.1 * moved(spread)


@pytest.mark.parametrize("noise_std", [0.0, 0.2])
def test_recovers_mixing_matrix_section_4_1(noise_std):
    # Issue 4: D = 10, K = 5, N = 5000: mixing_error below 0.08.
    data = make_ica(5000, 10, 5, noise_std=noise_std, random_state=0)
    model = SpreadICA(5, noise_variance=noise_std**2, random_state=0).fit(data.data)
    assert mixing_error(model.mixing_, data.mixing) < 0.08
    assert model.n_iter_ < model.max_iter


@pytest.mark.slow  # 11-16 s: EM now runs to its fixed point (tol is a distance)
@pytest.mark.parametrize("gamma", [0.0, 0.2])
def test_no_worse_than_fastica_by_10_percent(gamma):
    # Issue 4's recovery criterion with the defaults, on each of three data
    # sets and FastICA on the same data. From the FastICA start 'auto' uses a
    # small refining spread; measured on seeds 0-4 the error ratio to FastICA
    # is 0.94-1.004 (gamma = 0) and 0.92-0.99 (gamma = 0.2). With the paper's
    # rule as spread_scale, from the same start, it is 0.96-1.81, so the test
    # can fail.
    for seed in range(3):
        data = make_ica(5000, 10, 5, noise_std=gamma, random_state=seed)
        model = SpreadICA(5, noise_variance=gamma**2, random_state=0).fit(data.data)
        fastica = FastICA(5, whiten="unit-variance", max_iter=1000, random_state=0)
        fastica_error = mixing_error(fastica.fit(data.data).mixing_, data.mixing)
        assert mixing_error(model.mixing_, data.mixing) < 0.08
        assert mixing_error(model.mixing_, data.mixing) <= 1.1 * fastica_error


def test_beats_fastica_when_noise_hides_the_weakest_source():
    # Square 10 x 10 sign mixings have a smallest squared singular value of
    # 0.02-0.3, far below gamma^2 = 1: FastICA, which ignores the noise, is
    # biased, and noisy-ICA maximum likelihood is not, but its EM contracts
    # slowly along the hidden direction, so the E-step must be accurate there
    # (the defensive mixture proposal and independent draws per row group).
    # Measured on the benchmark's seeds 1, 2, 5, 8, 10 (N = 2000, 100 EM
    # iterations): error ratio to FastICA 0.61-0.95, mean 0.79; with the
    # likelihood-factor proposal and draws shared by all rows it was
    # 0.81-1.36, mean 1.04.
    ratios = []
    for seed in [1, 2, 5]:
        data = make_ica(2000, 10, 10, noise_std=1.0, random_state=seed)
        fastica = FastICA(10, whiten="unit-variance", max_iter=1000, random_state=seed)
        fastica_error = mixing_error(fastica.fit(data.data).mixing_, data.mixing)
        # The paper's Laplace prior, the sources' true family (as measured);
        # learning ten densities here costs 8x the time for the same claim.
        # 1000 draws as measured; n_importance_samples='auto' grows to 1024
        # here after its first check, with ratios 0.65, 0.67, 1.02 (mean
        # 0.78): the maximum sits within the draws' seed-to-seed spread.
        model = SpreadICA(
            10,
            source="laplace",
            noise_variance=1.0,
            n_importance_samples=1000,
            max_iter=100,
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(data.data)
        ratios.append(mixing_error(model.mixing_, data.mixing) / fastica_error)
    assert max(ratios) < 1.0
    assert np.mean(ratios) < 0.9


def test_batch_size_bounds_memory_without_changing_the_fit():
    # The importance draws belong to groups of rows, not to E-step blocks, so
    # blocks of 50 or 2000 rows give the same EM path up to float32 rounding
    # (measured: 3e-7). Draws that changed with the blocks would move the fit
    # at the Monte Carlo level: fits with other draws differ by up to 3e-2.
    data = make_ica(1500, 6, 3, noise_std=0.3, random_state=0)
    common = dict(n_components=3, noise_variance=0.09, n_importance_samples=200, random_state=0)
    small = SpreadICA(batch_size=50, **common).fit(data.data)
    large = SpreadICA(batch_size=2000, **common).fit(data.data)
    assert small.n_iter_ == large.n_iter_
    np.testing.assert_allclose(small.mixing_, large.mixing_, atol=1e-5)


def test_score_prefers_true_mixing_matrix_to_perturbed_one_eq_49():
    # The spread log-likelihood (eq 49) is maximised by the true A: its
    # per-sample difference from a perturbed A has a positive mean, more
    # than 4 standard errors above zero on N held-out points.
    train = make_ica(500, 6, 3, noise_std=0.1, random_state=1)
    rng = np.random.default_rng(4)
    sources = rng.laplace(0.0, 1 / np.sqrt(2), size=(4000, 3))
    held_out = sources @ train.mixing.T + 0.1 * rng.standard_normal((4000, 6))
    model = SpreadICA(3, noise_variance=0.01, n_importance_samples=300, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.set_params(random_state=0).fit(train.data)
    model.mean_ = np.zeros(6)
    scores = {}
    for name, mixing in [
        ("true", train.mixing),
        ("perturbed", train.mixing + 0.3 * rng.standard_normal(train.mixing.shape)),
    ]:
        model.mixing_ = mixing
        model.components_ = np.linalg.pinv(mixing)
        scores[name] = model.score_samples(held_out)
    difference = scores["true"] - scores["perturbed"]
    standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
    assert difference.mean() > 4 * standard_error
    assert model.score(held_out) == pytest.approx(scores["perturbed"].mean())


@pytest.fixture(scope="module")
def small_fit():
    data = make_ica(600, 5, 3, noise_std=0.1, random_state=3)
    model = SpreadICA(3, noise_variance=0.01, n_importance_samples=200, random_state=0)
    return data, model.fit(data.data)


def test_same_random_state_gives_bit_identical_fit(small_fit):
    data, model = small_fit
    again = SpreadICA(**model.get_params()).fit(data.data)
    np.testing.assert_array_equal(again.mixing_, model.mixing_)
    np.testing.assert_array_equal(again.loglike_, model.loglike_)
    np.testing.assert_array_equal(again.score_samples(data.data), model.score_samples(data.data))


def test_transform_and_score_samples_are_seeded_and_row_subset_invariant(small_fit):
    data, model = small_fit
    full_score = model.score_samples(data.data)
    full_sources = model.transform(data.data)
    np.testing.assert_array_equal(model.score_samples(data.data), full_score)
    np.testing.assert_allclose(model.score_samples(data.data[7:19]), full_score[7:19], rtol=1e-12)
    np.testing.assert_allclose(model.transform(data.data[7:19]), full_sources[7:19], rtol=1e-12)


def test_pickle_round_trip(small_fit):
    data, model = small_fit
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.mixing_, model.mixing_)
    np.testing.assert_array_equal(restored.transform(data.data), model.transform(data.data))
    np.testing.assert_array_equal(
        restored.score_samples(data.data), model.score_samples(data.data)
    )


def test_deterministic_transform_inverts_the_generator():
    data = make_ica(400, 6, 3, random_state=4)
    model = SpreadICA(3, n_importance_samples=100, random_state=0).fit(data.data)
    # With gamma = 0, E[z | x] is the least-squares source vector: it
    # recovers the sources of every point the generator produces.
    sources = np.random.default_rng(10).laplace(size=(50, 3))
    np.testing.assert_allclose(model.transform(model.inverse_transform(sources)), sources, atol=1e-10)


def test_sample_moments_match_the_model():
    # Covariance of x = A z + e is A A^T + gamma^2 I; each entry of the sample
    # covariance has standard error sd(x_i x_j) / sqrt(n), estimated from the draws.
    data = make_ica(300, 4, 2, noise_std=0.3, random_state=0)
    model = SpreadICA(2, noise_variance=0.09, n_importance_samples=100, random_state=0)
    model.fit(data.data)
    n_samples = 40000
    X = model.sample(n_samples, random_state=0)
    assert X.shape == (n_samples, 4)
    expected = model.mixing_ @ model.mixing_.T + 0.09 * np.eye(4)
    centred = X - model.mean_
    products = centred[:, :, None] * centred[:, None, :]
    standard_error = products.std(axis=0) / np.sqrt(n_samples)
    assert np.all(np.abs(np.cov(X, rowvar=False) - expected) < 4 * standard_error)
    np.testing.assert_allclose(X.mean(axis=0), model.mean_, atol=4 * np.sqrt(expected.max() / n_samples))


def test_auto_spread_scale_is_paper_rule_section_4_1():
    # sigma = max(floor, 2.5 sqrt(mean(A A^T))), the data covariance standing
    # in; for this well-conditioned 6 x 3 mixing the proposal cap does not bind.
    # 'auto' uses it from every start but FastICA's.
    data = make_ica(1000, 6, 3, random_state=7)
    model = SpreadICA(3, n_importance_samples=50, max_iter=2, init="pca", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data.data)
    covariance = np.cov(data.data, rowvar=False)
    floor = 0.001 * np.sqrt(np.mean(np.diag(covariance)))
    expected = max(floor, 2.5 * np.sqrt(max(np.mean(covariance), 0.0)))
    assert expected**2 < np.linalg.eigvalsh(covariance)[-3]
    assert model.spread_scale_ == pytest.approx(expected)
    # The mean entry of a covariance is var(sum of coordinates) / D^2: zero
    # here up to rounding (which may make it negative), so the floor applies,
    # 0.001 times the RMS feature standard deviation (issue 14: no absolute floor).
    z = np.random.default_rng(8).laplace(size=(500, 1))
    X = np.hstack([z, -z])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in [1.0, 1e-4]:
            model.set_params(n_components=1).fit(c * X)
            assert model.spread_scale_ == pytest.approx(0.001 * c * np.std(z, ddof=1))


@pytest.mark.slow  # 12 s: 200 EM iterations from the PCA start
@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_auto_spread_scale_keeps_proposal_within_prior_for_square_mixing(gamma):
    # Square mixing: the paper's rule (sigma about 2.5-3) would make
    # V = tau^2 (A^T A)^-1 far wider than the unit-variance prior. The cap
    # tau^2 <= lambda_K(A^T A) keeps the largest eigenvalue of V at most 1
    # (up to the sampling error of the data covariance), and a fit at that
    # spread recovers A about as well as FastICA (uncapped: mixing_error
    # 0.55-0.71).
    data = make_ica(2000, 10, 10, noise_std=gamma, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = SpreadICA(10, noise_variance=gamma**2, init="pca", max_iter=1, random_state=0)
        capped = start.fit(data.data).spread_scale_
    paper_rule = 2.5 * np.sqrt(np.mean(np.cov(data.data, rowvar=False)))
    assert capped < paper_rule / 2
    gram = data.mixing.T @ data.mixing
    tau2 = capped**2 + gamma**2
    assert tau2 / np.linalg.eigvalsh(gram)[0] < 1.0 + 8.0 / np.sqrt(len(data.data))
    model = SpreadICA(
        10, spread_scale=capped, noise_variance=gamma**2, max_iter=200, random_state=0
    ).fit(data.data)
    fastica = FastICA(10, whiten="unit-variance", max_iter=1000, random_state=0)
    fastica_error = mixing_error(fastica.fit(data.data).mixing_, data.mixing)
    error = mixing_error(model.mixing_, data.mixing)
    assert error < 0.12
    assert error <= 1.25 * fastica_error


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_auto_spread_scale_from_fastica_start_is_small_refining_spread(gamma):
    # From the consistent FastICA start: sigma^2 = 0.02 (lambda_K - gamma^2),
    # 2% of the weakest source's variance added to its posterior.
    data = make_ica(1000, 6, 3, noise_std=gamma, random_state=7)
    model = SpreadICA(3, noise_variance=gamma**2, n_importance_samples=50, random_state=0)
    model.fit(data.data)
    covariance = np.cov(data.data, rowvar=False)
    expected = np.sqrt(0.02 * (np.linalg.eigvalsh(covariance)[-3] - gamma**2))
    assert model.spread_scale_ == pytest.approx(expected)


def test_refuses_models_without_likelihood_or_with_laplace_spread():
    X = make_ica(100, 3, 2, random_state=0).data
    for zero in [0, 0.0, np.float32(0.0)]:
        with pytest.raises(ValueError, match="no likelihood"):
            SpreadICA(2, spread=None, noise_variance=zero).fit(X)
    # Issue 13 item 2: the constraints refuse what fit cannot use.
    with pytest.raises(ValueError, match="'spread' parameter of SpreadICA"):
        SpreadICA(2, spread="laplace").fit(X)
    with pytest.raises(ValueError, match="'spread' parameter of SpreadICA"):
        SpreadICA(2, spread=LaplaceSpread(0.5)).fit(X)
    with pytest.raises(ValueError, match="n_components=4 must be <= n_features=3"):
        SpreadICA(4).fit(X)
    with pytest.raises(ValueError, match=r"shape \(n_features, n_components\)"):
        SpreadICA(2, init=np.ones((2, 2))).fit(X)


def test_convergence_warning_and_verbose_progress(capsys):
    X = make_ica(200, 3, 2, random_state=0).data
    # A fixed noise takes spread-EM (the learned noise of these noise-free
    # data would take the noise-free path).
    with pytest.warns(ConvergenceWarning, match="Increase max_iter or tol"):
        SpreadICA(
            2, noise_variance=0.0, n_importance_samples=20, max_iter=3, tol=0.0, verbose=1
        ).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all("spread log-likelihood" in line for line in lines)
    with pytest.warns(ConvergenceWarning, match="Increase max_iter or tol"):
        SpreadICA(2, max_iter=2, tol=0.0, verbose=1).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert all("noise-free" in line and "log-likelihood" in line for line in lines)


def test_warns_when_importance_sampler_degenerates_spec_4():
    # The importance weights degenerate when the proposal is wide next to the
    # posterior in many directions at once. The defensive mixture keeps the
    # weights bounded, so it takes many sources: for a 30 x 30 mixing with
    # sigma = 10 the effective sample size is 8.8 of 100 (below the warning's
    # threshold of 10), with sigma = 0.3 it is 40.
    X = make_ica(1000, 30, 30, random_state=3).data
    common = dict(
        n_components=30, source="laplace", n_importance_samples=100, max_iter=2, random_state=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        wide = SpreadICA(spread_scale=10.0, **common).fit(X)
    assert any("importance sampler is degenerate" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        narrow = SpreadICA(spread_scale=0.3, **common).fit(X)
    assert wide.effective_sample_size_ < 10 < 30 < narrow.effective_sample_size_


@pytest.mark.parametrize("c", [1e-6, 1e-3, 1e3, 1e6])
def test_fit_is_equivariant_to_units(c):
    # Issue 13 item 3: at the defaults, a fit on c X is the fit on X in other
    # units: mixing_ times c, the same sources, score shifted by -D log c.
    # The E-step runs in float32 on unit-free source coordinates; its 1e-7
    # rounding, carried by an EM map contracting at about 0.99, allows 1e-5
    # (1e-3 nats per sample for the score).
    X = make_ica(400, 4, 2, random_state=0).data
    common = dict(n_components=2, n_importance_samples=100, random_state=0)
    model = SpreadICA(**common).fit(X)
    scaled = SpreadICA(**common).fit(c * X)
    np.testing.assert_allclose(scaled.mixing_ / c, model.mixing_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scaled.noise_variance_ / c**2, model.noise_variance_, atol=1e-5)
    np.testing.assert_allclose(scaled.transform(c * X[:50]), model.transform(X[:50]), atol=1e-5)
    np.testing.assert_allclose(
        scaled.score_samples(c * X[:50]), model.score_samples(X[:50]) - 4 * np.log(c), atol=1e-3
    )


def test_degenerate_data_refused_before_em(monkeypatch):
    # Issue 14 item 4: constant columns, fewer rows than sources and rank below
    # n_components get a clear ValueError before EM starts (it used to end in
    # "array must not contain infs or NaNs").
    from skspread._testing import ica_em_module as ica_module

    def no_em(*args, **kwargs):
        raise AssertionError("EM started on degenerate data")

    monkeypatch.setattr(ica_module, "_em_step", no_em)
    X = make_ica(100, 4, 2, random_state=0).data
    constant = X.copy()
    constant[:, 1] = 3.0
    with pytest.raises(ValueError, match=r"constant columns \[1\]"):
        SpreadICA(2).fit(constant)
    # Identical rows: the 'auto' spread had no scale to take ("got 0.0").
    with pytest.raises(ValueError, match=r"constant columns \[0, 1\]"):
        SpreadICA().fit(np.tile([[1.0, 2.0]], (3, 1)))
    with pytest.raises(ValueError, match="n_samples=3 rows, but n_components=3"):
        SpreadICA(3, init="pca").fit(X[:3])
    low_rank = make_ica(100, 4, 2, random_state=0).sources @ np.diag([1.0, 2.0])[:, [0, 1, 0, 1]]
    with pytest.raises(ValueError, match="rank 2 < n_components=3"):
        SpreadICA(3).fit(low_rank)
    # Full rank, but columns in units 1e14 apart fall below float64's rank
    # resolution: the error says to standardise them.
    units = make_ica(2000, 4, 4, noise_std=0.1, random_state=0).data * np.logspace(-7, 7, 4)
    with pytest.raises(ValueError, match="span a factor 1e\\+14.*StandardScaler"):
        SpreadICA().fit(units)


def test_shared_base_contract_fitted_spread_sample_and_inverse_transform(small_fit):
    # Issue 13 item 2: spread_ and spread_scale_ (None for the noise-only
    # baseline), noise_variance_, one inverse_transform check, sample(n_samples)
    # refuses what is not a positive int.
    data, model = small_fit
    assert isinstance(model.spread_, GaussianSpread)
    assert model.spread_scale_ == model.spread_.scale
    assert model.noise_variance_ == 0.01
    with pytest.raises(ValueError, match="expects n_components=3"):
        model.inverse_transform(np.zeros((2, 4)))
    for n_samples, error in [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("3", TypeError)]:
        with pytest.raises(error, match="n_samples"):
            model.sample(n_samples)
    assert model.sample(np.int64(3)).shape == (3, 5)
    baseline = SpreadICA(3, spread=None, noise_variance=0.01, n_importance_samples=50, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        baseline.fit(data.data)
    assert baseline.spread_ is None and baseline.spread_scale_ is None


def test_interrupted_refit_keeps_the_previous_fit(small_fit, monkeypatch):
    # Issue 13 item 2: a KeyboardInterrupt inside the solver leaves the old
    # mean_ and mixing_ together.
    from skspread._testing import ica_em_module as ica_module

    data, fitted = small_fit
    model = SpreadICA(**fitted.get_params()).fit(data.data)
    mean, mixing = model.mean_, model.mixing_

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ica_module, "_em_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(data.data[:, :4] + 100.0)
    assert model.mean_ is mean and model.mixing_ is mixing
    assert model.n_features_in_ == 5


def test_float32_is_preserved_and_float64_stays_float64(small_fit):
    # Issue 17 item 6: float32 data gives float32 fitted arrays and outputs.
    # The fit runs in float64 on the float32 values, so it differs from the
    # float64 fit only by the data's rounding (relative 6e-8) and by where EM
    # stops, each fit within tol (relative) of its fixed point.
    data, model = small_fit
    X32 = data.data.astype(np.float32)
    model32 = SpreadICA(**model.get_params()).fit(X32)
    for name in ["mean_", "mixing_", "components_"]:
        assert getattr(model32, name).dtype == np.float32
        assert getattr(model, name).dtype == np.float64
    outputs = {
        "transform": model32.transform(X32),
        "inverse_transform": model32.inverse_transform(model32.transform(X32)),
        "score_samples": model32.score_samples(X32),
        "sample": model32.sample(3, random_state=0),
    }
    assert all(output.dtype == np.float32 for output in outputs.values())
    assert model.transform(data.data).dtype == np.float64
    tolerance = 2 * model.tol * np.linalg.norm(model.mixing_)
    assert np.linalg.norm(model32.mixing_ - model.mixing_) < tolerance


def test_squarem_stops_at_the_fixed_point_not_at_a_small_step():
    # A linear map x -> M x + b contracting at 0.99 takes steps of 1e-4 while
    # 1e-2 from its fixed point: SQUAREM must carry on to within tol of it.
    # At a rate within 0.001 of 1 it stops as stalled instead.
    from skspread._testing import squarem

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    fixed_point = rng.standard_normal(6) + 3.0
    for rates, stalled in [([0.99, 0.5, 0.3, 0.2, 0.1, 0.0], False), ([0.99995] + [0.5] * 5, True)]:
        M = basis @ np.diag(rates) @ basis.T

        def linear_map(x, M=M):
            return fixed_point + M @ (x - fixed_point)

        start = fixed_point + 1e-2 * basis[:, 0]
        result = squarem(linear_map, start, max_evaluations=500, tol=1e-6)
        assert result.stalled is stalled and result.converged is not stalled
        distance = np.linalg.norm(result.x - fixed_point) / np.linalg.norm(fixed_point)
        if stalled:
            assert result.n_evaluations < 20 and distance > 1e-3
        else:
            assert distance < 1e-6



def test_squarem_stall_within_resolution_converges():
    # A map crawling at rate 0.99995 stalls; asked whether x is within the
    # statistical resolution of the fixed point, True makes the stall a
    # convergence, False keeps it a stall; each check counts as an evaluation.
    from skspread._testing import squarem

    fixed_point = np.full(4, 3.0)

    def crawling(x):
        return fixed_point + 0.99995 * (x - fixed_point)

    start = fixed_point + np.array([1e-2, 0.0, 0.0, 0.0])
    asked = []
    for verdict in [True, False]:
        def resolved(x, step, final, verdict=verdict):
            asked.append(final)
            return verdict

        plain = squarem(crawling, start, max_evaluations=500, tol=1e-6)
        result = squarem(crawling, start, max_evaluations=500, tol=1e-6, resolved=resolved)
        assert plain.stalled and not plain.converged
        assert result.converged is verdict and result.stalled is not verdict
        assert result.n_evaluations == plain.n_evaluations + 1
    assert asked == [True, True]


def test_squarem_stall_goes_on_while_the_caller_sees_progress():
    # ``resolved`` returning None at a stall (the exact E-step's log-likelihood
    # still rising) keeps the slow steps going, here to max_evaluations.
    from skspread._testing import squarem

    fixed_point = np.full(4, 3.0)

    def crawling(x):
        return fixed_point + 0.99995 * (x - fixed_point)

    start = fixed_point + np.array([1e-2, 0.0, 0.0, 0.0])
    result = squarem(
        crawling, start, max_evaluations=300, tol=1e-6, resolved=lambda x, step, final: None
    )
    assert not result.converged and not result.stalled
    assert result.n_evaluations == 300


def test_squarem_confirm_asks_the_resolution_before_converging():
    # A slow mode (rate 0.995) under a fast one (0.3): the rate estimated from
    # the last steps is the fast one's, and the distance test passes while
    # the slow mode is still 1e-3 away. With ``confirm`` (the exact E-step's
    # maps) that convergence must also pass ``resolved``; a check that says
    # False keeps the iteration going until the slow mode has settled.
    from skspread._testing import squarem

    fixed_point = np.full(2, 3.0)
    rates = np.array([0.3, 0.995])

    def two_modes(x):
        return fixed_point + rates * (x - fixed_point)

    start = fixed_point + np.array([1.0, 1e-3])

    def resolved(x, step, final):
        return bool(np.linalg.norm(step) < 1e-9)

    plain = squarem(two_modes, start, max_evaluations=2000, tol=1e-3)
    confirmed = squarem(
        two_modes, start, max_evaluations=2000, tol=1e-3, resolved=resolved, confirm=True
    )
    assert plain.converged and confirmed.converged
    assert abs(plain.x[1] - 3.0) > 1e-4
    assert abs(confirmed.x[1] - 3.0) < 1e-6


def test_frozen_noise_only_fit_warns_eq_43_45():
    # Issue 14 item 3: with gamma^2 = 1e-10 and no spread the noise-only EM
    # is frozen (paper eq 43-45); it used to report convergence after one
    # iteration at mixing_error 0.33. It must say so, and what to change.
    data = make_ica(1000, 4, 2, random_state=0)
    # The paper's Laplace prior, which make_ica's sources follow.
    common = dict(source="laplace", init="pca", random_state=0)
    model = SpreadICA(2, spread=None, noise_variance=1e-10, **common)
    with pytest.warns(ConvergenceWarning, match=r"frozen.*use spread='gaussian'"):
        model.fit(data.data)
    assert model.n_iter_ < 20
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SpreadICA(2, **common).fit(data.data)


def test_learned_isotropic_noise_is_zero_on_noise_free_data():
    # Issue 14 item 2: the learned noise ends at zero on noise-free data
    # (gamma^2 = max(tau^2 - sigma^2, 0)) and the fit is that of noise_variance=0.
    data = make_ica(2000, 6, 3, random_state=1)
    common = dict(n_components=3, n_importance_samples=200, random_state=0)
    learned = SpreadICA(noise_variance="isotropic", **common).fit(data.data)
    fixed = SpreadICA(noise_variance=0.0, **common).fit(data.data)
    assert learned.noise_variance_ < 1e-3 * np.mean(np.var(data.data, axis=0))
    assert mixing_error(learned.mixing_, data.mixing) < 1.1 * mixing_error(fixed.mixing_, data.mixing)


@pytest.mark.parametrize("noise", ["isotropic", "diagonal"])
def test_learned_noise_recovers_gamma(noise):
    # Issue 14 item 2: the learned gamma^2 is within the sampling error of the
    # truth. With D - K = 4 noise-only directions the isotropic estimate has
    # relative standard error about sqrt(2 / (N (D - K))) = 1.6%, a feature's
    # about sqrt(2 / N) = 3.2% plus the signal it shares; allow 4 of them.
    n_samples, n_features, n_components = 2000, 7, 3
    gammas = np.linspace(0.3, 0.5, n_features) if noise == "diagonal" else 0.4
    data = make_ica(n_samples, n_features, n_components, random_state=2)
    rng = np.random.default_rng(3)
    X = data.data + rng.standard_normal(data.data.shape) * gammas
    model = SpreadICA(n_components, noise_variance=noise, n_importance_samples=200, random_state=0)
    model.fit(X)
    relative_error = np.abs(model.noise_variance_ / np.square(gammas) - 1.0)
    standard_error = np.sqrt(2.0 / (n_samples * (n_features - n_components)))
    if noise == "diagonal":
        assert model.noise_variance_.shape == (n_features,)
        standard_error = 2 * np.sqrt(2.0 / n_samples)
    assert np.all(relative_error < 4 * standard_error)
    assert mixing_error(model.mixing_, data.mixing) < 0.1


def test_squarem_continues_from_the_point_on_slow_offers():
    # x -> x / (1 + x) crawls to its fixed point 0 at a rate tending to 1, as
    # a variance that EM drives to zero does, and stalls; offered that
    # boundary when its steps get small, SQUAREM continues from it and stops
    # there, counting the evaluation the offer made.
    from skspread._testing import squarem

    def crawl(x):
        return np.array([x[0] / (1.0 + x[0]), 1.0])

    start = np.array([0.5, 1.0])
    alone = squarem(crawl, start, max_evaluations=500, tol=1e-5)
    assert alone.stalled and alone.x[0] > 0.0
    offers = []

    def offer_boundary(x, evaluate):
        offers.append(x[0])
        return evaluate(np.array([0.0, 1.0]))

    helped = squarem(crawl, start, max_evaluations=500, tol=1e-5, on_slow=offer_boundary)
    assert helped.converged and helped.x[0] == 0.0
    assert len(offers) == 1 and helped.n_evaluations < alone.n_evaluations


@pytest.mark.slow  # 25 s: 4000 rows, 1000 draws, about 50 EM iterations
def test_learned_noise_reaches_zero_on_noise_free_square_uniform_mixtures():
    # Issue 14 item 3: on five uniform sources mixed 5 x 5 without noise the
    # learned noise crawled down the noise-density ridge (136 iterations,
    # ending frozen at gamma^2 = 0.012); trying gamma^2 = 0 when EM crawls
    # ends there, without a warning, at least as accurate as FastICA.
    from skspread.metrics import amari_distance

    rng = np.random.RandomState(0)
    while True:
        mixing = rng.choice([-1.0, 1.0], size=(5, 5))
        if np.linalg.cond(mixing) < 1e3:
            break
    X = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(4000, 5)) @ mixing.T
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(5, random_state=0).fit(X)
    assert model.noise_variance_ == 0.0
    fastica = FastICA(5, whiten="unit-variance", random_state=0).fit(X)
    assert amari_distance(model.components_, mixing) <= amari_distance(
        np.linalg.pinv(fastica.mixing_), mixing
    )


def test_auto_draws_are_reproducible_and_reported():
    # 'auto' starts with 256 draws per row on these 1000 rows (128 from
    # 16384) and may double them, up to 1024;
    # the draws come from random_state, so a refit repeats the fit exactly.
    # (Learned densities of two sources take the exact E-step: no draws.)
    X = make_ica(1000, n_features=4, n_components=2, random_state=0).data
    first = SpreadICA(2, source="laplace", random_state=0).fit(X)
    second = SpreadICA(2, source="laplace", random_state=0).fit(X)
    assert first.n_importance_samples_ in (256, 512, 1024)
    np.testing.assert_array_equal(first.mixing_, second.mixing_)
    assert first.n_importance_samples_ == second.n_importance_samples_
    assert first.n_iter_ == len(first.loglike_) <= first.max_iter


def test_auto_takes_fewer_first_draws_where_the_draw_sets_are_full():
    # 128 draws per row once the 64 groups of rows with their own draws
    # hold 8192 draws together (16384 rows); with fewer groups the shared
    # draws' Monte Carlo error slowed EM at 128 (see _auto_first_draws).
    from skspread._testing import auto_first_draws

    assert auto_first_draws(16384) == 128
    assert auto_first_draws(16383) == auto_first_draws(1000) == 256
    X = make_ica(16384, n_features=6, n_components=3, noise_std=0.3, random_state=0).data
    ica = SpreadICA(3, source="laplace", noise_variance=0.09, random_state=0).fit(X)
    assert ica.n_importance_samples_ == 128


def test_failed_checks_grow_the_draws_to_pass_both_bounds():
    # The Monte Carlo error falls as 1 / sqrt(draws), the ESS grows as the
    # draws: the doublings that pass both the error bound (a quarter of the
    # sampling error) and the least ESS (64) at once, up to 1024.
    from skspread._testing import grown_draws

    assert grown_draws(128, 0.0, 1.0, 40.0) == 256  # ESS: x1.6
    assert grown_draws(128, 0.3, 1.0, 200.0) == 256  # error: x1.44
    assert grown_draws(128, 0.6, 1.0, 200.0) == 1024  # error: x5.76
    assert grown_draws(128, 0.3, 1.0, 10.0) == 1024  # both: the ESS's x6.4
    assert grown_draws(128, 0.0, 1.0, float("nan")) == 1024
    assert grown_draws(128, 0.1, 0.0, 200.0) == 1024  # no sampling error to compare
    assert grown_draws(512, 0.0, 1.0, 60.0) == 1024


def test_int_draws_are_honoured():
    X = make_ica(1000, n_features=4, n_components=2, random_state=0).data
    ica = SpreadICA(2, n_importance_samples=50, random_state=0).fit(X)
    assert ica.n_importance_samples_ == 50
    online = SpreadICA(2, n_importance_samples=50, random_state=0).partial_fit(X)
    assert online.n_importance_samples_ == 50


def test_auto_draws_grow_where_the_monte_carlo_error_is_large():
    # Noise (gamma = 1) hides the weakest direction of a square 10 x 10
    # mixing: the proposal is poor there and 256 draws leave a Monte Carlo
    # error of the EM map half its sampling error (measured), so 'auto'
    # takes more draws (1024); on the
    # paper's noise-free setting 256 draws are enough.
    noisy = make_ica(2000, 10, 10, noise_std=1.0, random_state=1)
    ica = SpreadICA(10, source="laplace", noise_variance=1.0, max_iter=25, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica.fit(noisy.data)
    assert ica.n_importance_samples_ > 256
    clean = make_ica(2000, 6, 3, random_state=1)
    fitted = SpreadICA(3, source="laplace", random_state=1).fit(clean.data)
    assert fitted.n_importance_samples_ == 256


def _noise_free_laplace_uniform(seed):
    # The realistic benchmark's row 'lapuni-6x6': 3 Laplace + 3 uniform
    # unit-variance sources, a 6 x 6 sign mixing, no noise, N = 4000.
    rng = np.random.RandomState(seed)
    while True:
        mixing = rng.choice([-1.0, 1.0], size=(6, 6))
        if np.linalg.cond(mixing) < 1e3:
            break
    sources = np.hstack(
        [
            rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=(4000, 3)),
            rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(4000, 3)),
        ]
    )
    return sources @ mixing.T, mixing


@pytest.fixture
def spread_em_only(monkeypatch):
    """Learned densities and noise fitted by spread-EM from FastICA's start, noise-free data too.

    The noise-free path takes those data at the defaults (and spread-EM
    otherwise starts from its fit); spread-EM, which also fits them where
    the score test finds noise, is tested on them here.
    """
    from skspread._testing import ica_module

    monkeypatch.setattr(ica_module, "_principal_subspace", lambda X, n_components: None)


def test_a_fit_stopped_on_the_learned_noise_ridge_resumes_from_its_end(spread_em_only):
    # Seed 3 by spread-EM: the start noise shrinks FastICA's mixing (Amari 0.30), and the
    # learned noise and the densities crawl down their ridge while A's steps
    # look converged: EM stopped after 9 evaluations at Amari 0.18 (FastICA
    # 0.056) and warned. EM now resumes from the ridge's end (zero noise) and
    # keeps it, more likely (-11.406 against -11.465 per row): Amari 0.054,
    # no warning. The measured 0.054 +- its seed-to-seed spread (0.003 over
    # the benchmark's 5 seeds at N = 4000) lies far below 0.08.
    X, mixing = _noise_free_laplace_uniform(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(6, random_state=3).fit(X)
    assert amari_distance(np.linalg.pinv(model.mixing_), mixing) < 0.08
    # Without the evaluations to resume (max_iter), the crawl still warns.
    with pytest.warns(ConvergenceWarning, match="learned noise was still moving.*max_iter"):
        SpreadICA(6, max_iter=9, random_state=3).fit(X)


@pytest.mark.parametrize(
    "start_variance, loss, resumed_kept", [(0.3, 1.0, True), (0.3, 3.0, False), (0.1, 0.0, False)]
)
def test_the_ridge_end_is_kept_unless_the_stopped_fit_is_significantly_likelier(
    start_variance, loss, resumed_kept
):
    # A run whose noise fell (from 0.3 to 0.2) and still crawls resumes from
    # the floor; the resumed fit is kept unless the stopped one is likelier
    # by more than a likelihood-ratio test of gamma^2 at 5% finds (1.92 nats
    # over the rows). A rising noise (from 0.1) is not resumed. A stopped fit
    # kept with its noise still crawling warns.
    from types import SimpleNamespace

    from skspread._testing import ica_convergence_module as convergence
    from skspread._testing import ica_em_module as em

    n_samples, floor = 1000, 0.01
    stopped = em._EMResult(np.eye(2), 0.2, "laplace", [-3.0], 100.0, True, False, 0.5, 0.5)
    asked = []

    def fit_from(mixing, total_variance, prior, budget):
        asked.append(total_variance)
        loglike = [-4.0, -3.0 - loss / n_samples]
        return stopped._replace(total_variance=floor, loglike=loglike, noise_distance=0.0)

    kept = convergence._fit_past_noise_ridge(stopped, start_variance, fit_from, 100, 3e-3, floor, n_samples)
    falling = start_variance > stopped.total_variance
    assert asked == ([floor] if falling else [])
    assert (kept.total_variance == floor) is resumed_kept
    assert len(kept.loglike) == (3 if falling else 1)
    estimator = SimpleNamespace(tol=3e-3, max_iter=500, n_importance_samples_=256)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        convergence._warn_unless_converged(kept, GaussianSpread(0.1), estimator, np.eye(2))
    assert [str(w.message).startswith("SpreadICA stopped while") for w in caught] == (
        [] if resumed_kept else [True]
    )


def test_score_samples_of_rows_far_beyond_the_data():
    # Audit: rows 1e50 times the data's scale raised "Maximum allowed size
    # exceeded" (a grid origin wrapped around intp), and beyond about 1e154
    # times the squared norm overflows: the score is -inf there, not nan.
    X = make_ica(2000, n_features=4, n_components=2, random_state=0).data
    for params in [{}, dict(noise_variance=0.05)]:
        model = SpreadICA(2, random_state=0, **params).fit(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            far = model.score_samples(X[:2] * 1e50)
            beyond = model.score_samples(X[:2] * 1e160)
        assert np.all(np.isfinite(far)) and np.all(far < -1e90)
        assert np.all(beyond == -np.inf)
