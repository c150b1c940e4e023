"""Paper figure 4: spread-EM versus standard (noise-only) EM for ICA.

(a) Relative error of the mixing matrix versus the observation noise gamma:
    D = 20, K = 10, N = 20000, S_y = 1, S_z = 1000, 2000 EM iterations.
(b) Relative error versus the number of training points N: D = 10, K = 5,
    gamma = 0.2, S_y = 1, S_z = 1000, 500 EM iterations.

Both methods start from the same PCA start (the paper does not say which;
PCA is the start that shows the freezing of eq 43-45, since FastICA's start
is already consistent) and run a fixed number of EM iterations (tol = 0);
standard EM is ``SpreadICA(spread=None, noise_variance=gamma^2)``. The
spread is the paper's rule (spread_scale='auto'). Both use SQUAREM, so
"iterations" are EM map evaluations.

The full settings take hours on 2 cores. ``--quick`` shrinks them
(written into the CSV and the figure title):
(a) N = 5000, S_z = 300, 300 iterations, 2 seeds;
(b) N up to 5000, S_z = 300, 300 iterations, 2 seeds.

Usage::

    python benchmarks/figure4.py --quick

Writes benchmarks/results/figure4.png and figure4.csv.
"""

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skspread import SpreadICA  # noqa: E402
from skspread.datasets import make_ica  # noqa: E402
from skspread.metrics import mixing_error  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

FULL = dict(
    a=dict(n_features=20, n_components=10, n_samples=20000, n_importance=1000,
           n_iter=2000, seeds=10, noise=[0.001, 0.01, 0.05, 0.1, 0.2, 0.5]),
    b=dict(n_features=10, n_components=5, noise_std=0.2, n_importance=1000,
           n_iter=500, seeds=50, sizes=[250, 500, 1000, 2000, 5000, 10000]),
)
QUICK = dict(
    a=dict(n_features=20, n_components=10, n_samples=5000, n_importance=300,
           n_iter=300, seeds=2, noise=[0.01, 0.05, 0.2, 0.5]),
    b=dict(n_features=10, n_components=5, noise_std=0.2, n_importance=300,
           n_iter=300, seeds=2, sizes=[500, 1000, 2000, 5000]),
)


def _identifiable_seeds(n_features, n_components, count):
    """First ``count`` seeds whose ±1 mixing matrix has full column rank."""
    seeds, seed = [], 0
    while len(seeds) < count:
        mixing = make_ica(1, n_features, n_components, random_state=seed).mixing
        if np.linalg.matrix_rank(mixing) == n_components:
            seeds.append(seed)
        seed += 1
    return seeds


def _errors(n_samples, n_features, n_components, noise_std, n_importance, n_iter, seed):
    data = make_ica(n_samples, n_features, n_components, noise_std=noise_std, random_state=seed)
    common = dict(
        n_components=n_components,
        noise_variance=noise_std**2,
        n_importance_samples=n_importance,
        init="pca",
        max_iter=n_iter,
        tol=0.0,
        random_state=seed,
    )
    errors = {}
    for method, spread in [("spread EM", "gaussian"), ("standard EM", None)]:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = SpreadICA(spread=spread, **common).fit(data.data)
        errors[method] = (mixing_error(model.mixing_, data.mixing), time.perf_counter() - start)
    return errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced settings (minutes)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []

    def record(panel, x, errors, seed, config):
        for method, (error, seconds) in errors.items():
            rows.append(dict(panel=panel, x=x, method=method, seed=seed, error=error,
                             seconds=round(seconds, 2), **config))
        print(panel, x, seed, {m: round(e, 4) for m, (e, _) in errors.items()}, flush=True)

    a = settings["a"]
    config_a = dict(n_features=a["n_features"], n_components=a["n_components"],
                    n_samples=a["n_samples"], n_importance=a["n_importance"], n_iter=a["n_iter"])
    for seed in _identifiable_seeds(a["n_features"], a["n_components"], a["seeds"]):
        for noise_std in a["noise"]:
            errors = _errors(a["n_samples"], a["n_features"], a["n_components"], noise_std,
                             a["n_importance"], a["n_iter"], seed)
            record("a", noise_std, errors, seed, config_a)
    b = settings["b"]
    for seed in _identifiable_seeds(b["n_features"], b["n_components"], b["seeds"]):
        for n_samples in b["sizes"]:
            errors = _errors(n_samples, b["n_features"], b["n_components"], b["noise_std"],
                             b["n_importance"], b["n_iter"], seed)
            record("b", n_samples, errors, seed,
                   dict(n_features=b["n_features"], n_components=b["n_components"],
                        n_samples=n_samples, n_importance=b["n_importance"], n_iter=b["n_iter"]))

    with open(RESULTS / "figure4.csv", "w", newline="") as handle:
        handle.write(f"# python benchmarks/figure4.py {' '.join(sys.argv[1:] if argv is None else argv)}\n")
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, panel, label in [(axes[0], "a", "observation noise gamma"),
                               (axes[1], "b", "number of training points N")]:
        for method in ["standard EM", "spread EM"]:
            xs = sorted({r["x"] for r in rows if r["panel"] == panel})
            values = [[r["error"] for r in rows if r["panel"] == panel and r["x"] == x
                       and r["method"] == method] for x in xs]
            means = np.array([np.mean(v) for v in values])
            errs = np.array([np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0 for v in values])
            axis.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=method)
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("relative error of A")
        axis.legend()
    mode = "quick" if args.quick else "full"
    axes[0].set_title(f"(a) D={a['n_features']}, K={a['n_components']}, N={a['n_samples']}, "
                      f"{a['n_iter']} its", fontsize=9)
    axes[1].set_title(f"(b) D={b['n_features']}, K={b['n_components']}, gamma={b['noise_std']}, "
                      f"{b['n_iter']} its", fontsize=9)
    figure.suptitle(f"Paper figure 4 ({mode} settings, S_z = {a['n_importance']})", fontsize=10)
    figure.tight_layout()
    figure.savefig(RESULTS / "figure4.png", dpi=80)


if __name__ == "__main__":
    main()
