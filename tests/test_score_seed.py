"""score_samples of the Monte Carlo estimators: per-row draws, deterministic and row by row.

SpreadICA and DeltaVAE estimate each row's spread log-likelihood with random
draws derived from the row and the evaluation seed fixed at fit (the private
``_evaluation_seed``); the tests set that seed to see how the score moves
with the seed alone, the model staying the same.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skspread import DeltaVAE, SpreadICA
from skspread.datasets import make_ica


def _spread_ica():
    data = make_ica(800, 5, 3, noise_std=0.1, random_state=3)
    model = SpreadICA(3, noise_variance=0.01, n_importance_samples=200, random_state=0)
    # Only the score of a fitted model matters here, not how close the fit
    # came to the maximum (a few EM iterations would do).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return data.data, model.fit(data.data)


def _delta_vae(spread):
    pytest.importorskip("torch")
    X = load_digits().data[:400] / 16.0
    model = DeltaVAE(
        n_components=2,
        hidden_layer_sizes=(16,),
        n_epochs=2,
        spread=spread,
        device="cpu",
        random_state=0,
    )
    return X, model.fit(X)


@pytest.fixture(
    scope="module",
    params=["SpreadICA", "DeltaVAE-gaussian", "DeltaVAE-laplace", "DeltaVAE-None"],
)
def fitted(request):
    if request.param == "SpreadICA":
        return _spread_ica()
    spread = request.param.split("-")[1]
    return _delta_vae(None if spread == "None" else spread)


def with_evaluation_seed(model, seed):
    model = copy.deepcopy(model)
    model._evaluation_seed = seed
    return model


def test_score_samples_is_deterministic_and_row_subset_invariant(fitted):
    X, model = fitted
    full = model.score_samples(X)
    np.testing.assert_array_equal(model.score_samples(X), full)
    mask = np.random.default_rng(0).random(len(X)) < 0.3
    np.testing.assert_allclose(model.score_samples(X[mask]), full[mask], rtol=1e-12)
    order = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(model.score_samples(X[order]), full[order], rtol=1e-12)


def test_a_duplicated_row_gets_the_same_score_and_other_seeds_other_draws(fitted):
    X, model = fitted
    full = model.score_samples(X[:5])
    scores = model.score_samples(np.vstack([X[:5], X[:5], -0.0 * X[:1] + X[:1]]))
    np.testing.assert_array_equal(scores[:5], scores[5:10])
    np.testing.assert_allclose(scores[:5], full, rtol=1e-12)
    assert scores[10] == scores[0]
    # The same row under another seed gets other draws, another score.
    assert with_evaluation_seed(model, 12345).score_samples(X[:1])[0] != scores[0]


def test_the_mean_scores_spread_over_evaluation_seeds_shrinks_like_one_over_sqrt_n(fitted):
    # Each row's Monte Carlo error is independent of the other rows', so the
    # std of the mean score over seeds is the per-row error's std over
    # sqrt(N). With one set of draws shared by all rows it would not shrink
    # with N. The per-row error variance is half that of the difference
    # between two seeds' scores of the same row.
    X, model = fitted
    n_seeds = 30
    seeds = [with_evaluation_seed(model, seed) for seed in range(n_seeds)]
    first, second = seeds[0].score_samples(X), seeds[1].score_samples(X)
    row_error_std = np.std(first - second, ddof=1) / np.sqrt(2)
    assert row_error_std > 0.05  # the draws do move a row's score
    for n_rows in (100, len(X)):
        means = [seeded.score(X[:n_rows]) for seeded in seeds]
        expected = row_error_std / np.sqrt(n_rows)
        # The std of 30 normal values lies within [0.6, 1.45] of its
        # expectation with probability above 0.998.
        assert 0.6 * expected < np.std(means, ddof=1) < 1.45 * expected
