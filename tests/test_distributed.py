"""Scale-out on dask: a real LocalCluster with two worker processes.

dask_ml.wrappers.Incremental feeds the blocks of a dask array to partial_fit,
GridSearchCV runs its fits on the workers through joblib's dask backend, and
ParallelPostFit transforms a dask array block by block. Skipped without the
``distributed`` extra; slow because starting two worker processes takes
seconds to tens of seconds on a loaded machine.
"""

import os
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")
dask_array = pytest.importorskip("dask.array")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402

import skspread  # noqa: E402
from skspread import SpreadFactorAnalysis, SpreadICA  # noqa: E402
from skspread.datasets import make_ica  # noqa: E402

pytestmark = pytest.mark.slow

# Estimators with partial_fit. SpreadFactorAnalysis.partial_fit equals fit on
# the whole; SpreadICA's online EM depends on the split, so its reference is
# partial_fit over the same blocks in this process.
INCREMENTAL_ESTIMATORS = [
    SpreadFactorAnalysis(2),
    SpreadFactorAnalysis(2, noise_variance="diagonal"),
    SpreadFactorAnalysis(2, spread=None, noise_variance="diagonal", rotation="varimax"),
    SpreadICA(2, n_importance_samples=200, random_state=0),
]
FITTED = ("mean_", "components_", "noise_variance_", "spread_scale_", "loglike_", "n_iter_")


@pytest.fixture(scope="module")
def client():
    # The workers import the same skspread as this process, installed or not.
    package_parent = str(Path(skspread.__file__).resolve().parent.parent)
    python_path = os.pathsep.join(
        path for path in (package_parent, os.environ.get("PYTHONPATH")) if path
    )
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        env={"PYTHONPATH": python_path, "OMP_NUM_THREADS": "1"},
    )
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def _factor_data(n_samples=2000, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n_samples, 2)) @ rng.standard_normal((2, n_features))
        + rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 1.0, n_features)
        + rng.uniform(-3, 3, n_features)
    )


@pytest.mark.parametrize("estimator", INCREMENTAL_ESTIMATORS, ids=repr)
def test_incremental_on_a_dask_array_equals_fit_on_the_whole(client, estimator):
    if isinstance(estimator, SpreadICA):
        X = make_ica(2000, 6, 2, random_state=0).data
    else:
        X = _factor_data()
    blocks = dask_array.from_array(X, chunks=(300, X.shape[1]))
    with distributed.get_task_stream(client) as tasks:
        # Online EM depends on the order of the blocks: SpreadICA's in order.
        incremental = dask_ml_wrappers.Incremental(
            estimator, shuffle_blocks=not isinstance(estimator, SpreadICA)
        ).fit(blocks)
    # One partial_fit task per block ran on the workers (dask-ml names them 'fit-...').
    block_fits = [task for task in tasks.data if str(task["key"][0]).startswith("fit-")]
    assert len(block_fits) >= blocks.numblocks[0]
    fitted = incremental.estimator_
    reference = type(estimator)(**estimator.get_params())
    if isinstance(estimator, SpreadICA):
        for begin in range(0, len(X), 300):
            reference.partial_fit(X[begin : begin + 300])
    else:
        reference.fit(X)
    assert fitted.n_samples_seen_ == len(X)
    for name in FITTED:
        expected = getattr(reference, name)
        np.testing.assert_allclose(
            np.asarray(getattr(fitted, name), dtype=float),
            np.asarray(expected, dtype=float),
            rtol=1e-10,
            atol=1e-10 * np.abs(np.asarray(expected, dtype=float)).max(),
            err_msg=name,
        )


def test_grid_search_on_the_cluster_picks_the_local_best_parameters(client):
    X = _factor_data(n_samples=600, n_features=8, seed=1)
    grid = {"n_components": [1, 2, 3], "spread_scale": [0.3, 1.0, 3.0]}

    def search():
        return GridSearchCV(
            SpreadFactorAnalysis(noise_variance="diagonal"), grid, cv=KFold(3), n_jobs=2
        ).fit(X)

    local = search()
    with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as tasks:
        remote = search()
    workers = {task["worker"] for task in tasks.data}
    assert len(workers) == 2, "the fits ran on both worker processes"
    assert remote.best_params_ == local.best_params_
    assert remote.best_params_["n_components"] == 2
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], rtol=1e-12
    )


def test_parallel_post_fit_transforms_a_dask_array(client):
    X = _factor_data()
    model = SpreadFactorAnalysis(2, noise_variance="diagonal").fit(X)
    blocks = dask_array.from_array(X, chunks=(500, X.shape[1]))
    wrapped = dask_ml_wrappers.ParallelPostFit(model)
    transformed = wrapped.transform(blocks)
    assert isinstance(transformed, dask_array.Array)
    np.testing.assert_allclose(transformed.compute(), model.transform(X), rtol=1e-12, atol=1e-12)
