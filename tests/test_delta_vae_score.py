"""DeltaVAE.score_samples: per-row draws, deterministic and row by row.

The evaluation seed is the private ``_evaluation_seed`` fixed at fit; the
tests set it to see how the score moves with the seed alone, the model
staying the same.
"""

import copy

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skspread import DeltaVAE

pytest.importorskip("torch")


@pytest.fixture(scope="module", params=["gaussian", "laplace", None])
def fitted(request):
    X = load_digits().data[:400] / 16.0
    model = DeltaVAE(
        n_components=2,
        hidden_layer_sizes=(16,),
        n_epochs=2,
        spread=request.param,
        device="cpu",
        random_state=0,
    )
    return X, model.fit(X)


def with_evaluation_seed(model, seed):
    model = copy.deepcopy(model)
    model._evaluation_seed = seed
    return model


def test_score_samples_is_deterministic_row_by_row_and_equal_for_equal_rows(fitted):
    X, model = fitted
    full = model.score_samples(X)
    np.testing.assert_array_equal(model.score_samples(X), full)
    mask = np.random.default_rng(0).random(len(X)) < 0.3
    np.testing.assert_allclose(model.score_samples(X[mask]), full[mask], rtol=1e-12)
    doubled = model.score_samples(np.vstack([X[:5], X[:5]]))
    np.testing.assert_allclose(doubled[:5], doubled[5:], rtol=1e-12)
    np.testing.assert_allclose(doubled[:5], full[:5], rtol=1e-12)


def test_the_mean_scores_spread_over_evaluation_seeds_shrinks_like_one_over_sqrt_n(fitted):
    # Rows get independent draws, so the std of the mean score over seeds is
    # the per-row error's std over sqrt(N); the per-row error variance is
    # half that of the difference between two seeds' scores of a row.
    X, model = fitted
    n_seeds = 30
    seeds = [with_evaluation_seed(model, seed) for seed in range(n_seeds)]
    first, second = seeds[0].score_samples(X), seeds[1].score_samples(X)
    row_error_std = np.std(first - second, ddof=1) / np.sqrt(2)
    assert row_error_std > 0.05
    for n_rows in (100, 400):
        means = [seeded.score(X[:n_rows]) for seeded in seeds]
        expected = row_error_std / np.sqrt(n_rows)
        # The std of 30 normal values lies within [0.6, 1.45] of its
        # expectation with probability above 0.998.
        assert 0.6 * expected < np.std(means, ddof=1) < 1.45 * expected
