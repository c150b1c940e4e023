"""SpreadICA with learned noise beside the true and the zero noise variance, and its EM cost.

For each setting (make_ica data, Laplace sources, sign mixing) SpreadICA is
fitted at its defaults with ``noise_variance='isotropic'`` (the default:
the noise level is not given), with the true gamma^2 given, and with
``noise_variance=0`` (the noise ignored); FastICA is fitted on the same data.
Reported: mixing_error, the learned gamma^2 against the truth, the number of
EM iterations, seconds per iteration and in all, and whether a
ConvergenceWarning was raised.

Usage::

    python benchmarks/bench_ica_noise.py            # paper setting (D = 20, K = 10, N = 20000) and D = 10, K = 5, N = 5000
    python benchmarks/bench_ica_noise.py --quick    # D = 10, K = 5, N = 5000 only

Writes benchmarks/results/ica_learned_noise.md.
"""

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning

from skspread import SpreadICA
from skspread.datasets import make_ica
from skspread.metrics import mixing_error

RESULTS = Path(__file__).resolve().parent / "results"


def _fit(model, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return seconds, warned


def run(settings, seeds):
    rows = []
    for n_samples, n_features, n_components, gamma in settings:
        for seed in seeds:
            data = make_ica(n_samples, n_features, n_components, noise_std=gamma, random_state=seed)
            fastica = FastICA(n_components, whiten="unit-variance", max_iter=1000, random_state=seed)
            start = time.perf_counter()
            fastica.fit(data.data)
            fastica_seconds = time.perf_counter() - start
            rows.append(
                (n_features, n_components, n_samples, gamma, seed, "FastICA",
                 mixing_error(fastica.mixing_, data.mixing), float("nan"), 0, fastica_seconds, False)
            )
            for label, noise in [("learned (default)", "isotropic"), ("true gamma^2", gamma**2),
                                 ("gamma^2 = 0", 0.0)]:
                model = SpreadICA(n_components, noise_variance=noise, random_state=seed)
                seconds, warned = _fit(model, data.data)
                rows.append(
                    (n_features, n_components, n_samples, gamma, seed, label,
                     mixing_error(model.mixing_, data.mixing), float(model.noise_variance_),
                     model.n_iter_, seconds, warned)
                )
                print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    settings = [(5000, 10, 5, gamma) for gamma in (0.0, 0.3, 0.5)]
    if not args.quick:
        settings += [(20000, 20, 10, gamma) for gamma in (0.0, 0.3, 0.5)]
    rows = run(settings, seeds=[0, 1])
    lines = [
        "# SpreadICA: learned noise against the true and the zero noise variance",
        "",
        f"Command: `python benchmarks/{Path(__file__).name}{' --quick' if args.quick else ''}` "
        f"(Python {platform.python_version()}, one thread, seeds 0-1, "
        "other parameters at their defaults).",
        "",
        "| D | K | N | gamma | seed | SpreadICA noise | mixing error | learned gamma^2 | "
        "EM iterations | s / iteration | s | warning |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for D, K, N, gamma, seed, label, error, noise, n_iter, seconds, warned in rows:
        per_iter = f"{seconds / n_iter:.2f}" if n_iter else ""
        learned = f"{noise:.4f}" if label.startswith("learned") else ""
        lines.append(
            f"| {D} | {K} | {N} | {gamma} | {seed} | {label} | {error:.4f} | {learned} | "
            f"{n_iter or ''} | {per_iter} | {seconds:.1f} | {'yes' if warned else ''} |"
        )
    lines += ["", "Means over seeds (mixing error; learned gamma^2 relative to the truth):", ""]
    for setting in sorted({row[:4] for row in rows}):
        parts = []
        for label in ["FastICA", "learned (default)", "true gamma^2", "gamma^2 = 0"]:
            chosen = [row for row in rows if row[:4] == setting and row[5] == label]
            parts.append(f"{label} {np.mean([row[6] for row in chosen]):.4f}")
            if label == "learned (default)" and setting[3] > 0:
                ratio = np.mean([row[7] for row in chosen]) / setting[3] ** 2
                parts[-1] += f" (gamma^2 x {ratio:.3f}, {np.mean([row[8] for row in chosen]):.0f} iterations)"
        lines.append(f"- D={setting[0]} K={setting[1]} N={setting[2]} gamma={setting[3]}: " + "; ".join(parts))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ica_learned_noise.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
