"""The exact E-step of SpreadICA's learned densities (``_ica_exact``).

With Gaussian spread and noise and a mixture of Gaussians per source, the
posterior is a mixture over the combinations of the sources' components
(independent factor analysis); 'auto' takes it, with no draws, for up to
four sources of three components and a learned noise.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skspread import SpreadICA
from skspread._testing import MixtureSourceDensity, Proposal, empty_component_moments
from skspread._testing import importance_posterior, standard_normal_draws
from skspread.datasets import make_ica
from skspread.metrics import amari_distance, mixing_error


def _density(rng, n_components):
    # Skewed, bimodal and peaked mixtures: unequal weights, means and widths.
    weights = rng.dirichlet(np.ones(3), size=n_components)
    means = rng.standard_normal((n_components, 3))
    variances = rng.uniform(0.05, 1.0, (n_components, 3))
    return MixtureSourceDensity(weights, means, variances)


@pytest.mark.parametrize("total_variance", [1e-4, 0.3, 3.0])
def test_exact_posterior_is_the_limit_of_importance_sampling(total_variance):
    # From the deterministic limit to noise wider than the sources: the
    # closed form agrees with 2e5 importance draws per row to their Monte
    # Carlo error (measured 1e-7 to 1e-4 here; allowed 2e-3, relative).
    rng = np.random.RandomState(0)
    n_features, n_components = 5, 3
    density = _density(rng, n_components)
    mixing = rng.standard_normal((n_features, n_components))
    Y = density.sample(40, rng) @ mixing.T
    Y += np.sqrt(total_variance) * rng.standard_normal(Y.shape)
    proposal = Proposal(mixing, total_variance)
    moments = empty_component_moments(density)
    exact = importance_posterior(Y, proposal, None, density, 256, np.float64, histogram=moments)
    draws = standard_normal_draws(200_000, n_components, rng)
    sampled = importance_posterior(Y, proposal, draws, density, 16, np.float64)
    np.testing.assert_allclose(exact[0], sampled[0], atol=2e-3)
    np.testing.assert_allclose(exact[1], sampled[1], atol=2e-3 * np.abs(exact[1]).max())
    np.testing.assert_allclose(exact[2], sampled[2], atol=2e-3 * np.abs(exact[2]).max())
    assert exact[3] == np.inf
    # The densities' statistics split the posterior moments among the
    # sources' components: mass, first and second moments add up to them.
    np.testing.assert_allclose(moments[0].sum(axis=1), len(Y))
    np.testing.assert_allclose(moments[1].sum(axis=1), exact[1].sum(axis=0))
    np.testing.assert_allclose(moments[2].sum(axis=1), np.diag(exact[2]))


def _noisy(n_samples, n_features, n_components, gamma, seed):
    data = make_ica(n_samples, n_features, n_components, random_state=seed)
    rng = np.random.default_rng(seed)
    return data.data + gamma * rng.standard_normal(data.data.shape), data.mixing


def test_auto_takes_the_exact_e_step_for_few_learned_sources():
    X, mixing = _noisy(2000, 6, 3, 0.4, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(3, random_state=0).fit(X)
    assert model.n_importance_samples_ == 0
    assert model.effective_sample_size_ == np.inf
    assert mixing_error(model.mixing_, mixing) < 0.1
    # Learned gamma^2 within 4 standard errors sqrt(2 / (N (D - K))) of 0.16.
    assert abs(model.noise_variance_ / 0.16 - 1.0) < 4 * np.sqrt(2.0 / (2000 * 3))
    again = SpreadICA(3, random_state=0, batch_size=64).fit(X)
    np.testing.assert_array_equal(again.mixing_, model.mixing_)
    # transform and score_samples are exact too: no draws, no seed.
    sources = model.transform(X[:20])
    np.testing.assert_array_equal(sources, again.transform(X[:20]))
    # The same model with 4096 importance draws agrees to their Monte Carlo error.
    sampled = copy.deepcopy(model)
    sampled.n_importance_samples_ = 4096
    np.testing.assert_allclose(sampled.transform(X[:20]), sources, atol=2e-3)
    np.testing.assert_allclose(
        sampled.score_samples(X[:20]), model.score_samples(X[:20]), atol=2e-3
    )


def test_fixed_priors_fixed_noise_and_many_sources_keep_the_draws():
    # A fixed noise's densities start with the noise in them, and one exact
    # EM step of theirs per iteration is slow to remove it (_ica_draws._exact).
    X, _ = _noisy(600, 8, 5, 0.3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        many = SpreadICA(5, max_iter=3, random_state=0).fit(X)
        laplace = SpreadICA(3, source="laplace", max_iter=3, random_state=0).fit(X)
        fixed = SpreadICA(3, noise_variance=0.09, max_iter=3, random_state=0).fit(X)
    assert many.n_importance_samples_ >= 256
    assert laplace.n_importance_samples_ >= 256
    assert fixed.n_importance_samples_ >= 256


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_exact_fit_is_equivariant_to_units(scale):
    # No draws and float64 throughout: a fit on c X is the fit on X in other
    # units, to rounding.
    X, _ = _noisy(1000, 5, 3, 0.3, 2)
    reference = SpreadICA(3, random_state=0).fit(X)
    scaled = SpreadICA(3, random_state=0).fit(scale * X)
    assert scaled.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(scaled.mixing_ / scale, reference.mixing_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scaled.noise_variance_ / scale**2, reference.noise_variance_)


def test_exact_fit_does_not_stop_on_the_noise_ridge():
    # 20000 rows of a 3 x 3 mixture with noise of standard deviation 0.3:
    # the resolution check alone stopped EM while the learned noise and the
    # densities still crawled along their ridge (gamma^2 0.25 against a true
    # 0.09, Amari distance 0.054 against FastICA's 0.018, 155 nats below the
    # fit given the true noise). Measured now: 0.135 and 0.018. The noise is
    # weakly identified on square data (the likelihood is level with the
    # true-noise fit's), hence the loose bound on it.
    data = make_ica(20000, 3, 3, noise_std=0.3, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SpreadICA(3, random_state=1).fit(data.data)
    assert model.n_importance_samples_ == 0
    assert amari_distance(np.linalg.pinv(model.mixing_), data.mixing) < 0.03
    assert 0.045 < model.noise_variance_ < 0.2


def test_likelihood_settles_on_the_remaining_rise():
    from skspread._testing import likelihood_settled

    # Entries: (evaluation, rise of the mean log-likelihood, step length).
    # No two consecutive plain evaluations yet: not settled.
    assert not likelihood_settled([(3, 1e-3, 1.0), (5, 1e-4, 0.5)], 1000)
    # Steps halving (r^2 = 1/4): a rise of 0.3 nats leaves 0.1 and more.
    assert not likelihood_settled([(3, 1e-3, 1.0), (4, 3e-4, 0.5)], 1000)
    # Steps falling tenfold: 0.05 nats leave about 5e-4.
    assert likelihood_settled([(3, 1e-3, 1.0), (4, 5e-5, 0.1)], 1000)
    # A rate near 1 among the last three pairs keeps a small rise open: the
    # first step after an extrapolation can be short.
    gains = [(3, 1e-4, 1.0), (4, 1e-4, 0.99), (6, 1e-4, 1.0), (7, 5e-5, 0.1)]
    assert not likelihood_settled(gains, 1000)
    # A step that lowered the log-likelihood (the densities' M-step can, by
    # thousandths of a nat) says nothing of what remains: the last positive
    # rise decides (0.3 nats at a rate of 0.99: far from settled).
    gains = [(3, 3e-4, 1.0), (4, 3e-4, 0.99), (6, 1e-4, 1.0), (7, -8e-6, 0.99)]
    assert not likelihood_settled(gains, 1000)
    # Three falls in a row: EM no longer raises the log-likelihood.
    gains = [(3, 3e-4, 1.0), (4, -1e-6, 0.99), (6, 1e-4, 1.0), (7, -1e-6, 0.99), (8, -1e-6, 0.98)]
    assert likelihood_settled(gains, 1000)
    # Steps that do not shrink leave the remaining rise unknown.
    assert not likelihood_settled([(3, 1e-5, 1.0), (4, 1e-5, 1.0)], 1000)
