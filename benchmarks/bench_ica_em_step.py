"""Seconds per SpreadICA EM evaluation: this checkout against a baseline git ref, side by side.

One EM evaluation at the defaults (source='adaptive', learned noise) is the
E-step (``_em_step``: importance sampling, paper eq 50-56, and the M-step of
A, eq 51) and the learned densities' M-step (``update_density``). For each
row of ``bench_ica_realistic.py`` (seed 0) the inputs are built once, at the
fit's start (FastICA's mixing, the start's densities and noise, the spread
copies and the importance draws of ``_draw_sets``), and both versions
evaluate the same inputs, interleaved (the order alternating between
repeats), so that a machine shared with other jobs loads both alike; the
fastest of the repeats (the least disturbed by other jobs, as timeit
reports) is given, and the ratio baseline / this checkout.
The baseline is the ``skspread`` folder of a git ref, extracted with
``git archive`` and imported as ``skspread_baseline``.

Each version's new mixing matrix is also compared: their difference,
relative to |A|, against the Monte Carlo error of the EM map (the
difference between this checkout's maps with two independent sets of
draws, over sqrt(2)): a faster E-step at the same accuracy keeps that
ratio far below one.

Usage::

    python benchmarks/bench_ica_em_step.py --baseline main --output /tmp/em_step.md
    python benchmarks/bench_ica_em_step.py --rows paper-g0.5 bss-3x3 --threads 1 2

Writes benchmarks/results/ica_em_step.md unless --output says otherwise.
"""

import argparse
import importlib
import io
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from skspread import SpreadICA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ica_realistic import ROWS  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = REPOSITORY / "benchmarks" / "results"
BASELINE = "skspread_baseline"


def _baseline_package(ref, folder):
    """Import the ``skspread`` folder of git ``ref`` as ``skspread_baseline``."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", "--format=tar", ref, "skspread"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (Path(folder) / "skspread").rename(Path(folder) / BASELINE)
    sys.path.insert(0, str(folder))
    return BASELINE


def _modules(package):
    return (
        importlib.import_module(f"{package}._ica_em"),
        importlib.import_module(f"{package}._source_density"),
        importlib.import_module(f"{package}._ica_sampling"),
    )


def _inputs(row, n_draws):
    """The inputs of one EM evaluation at the start of a default fit on ``row`` (seed 0)."""
    _, _, n_components, make = ROWS[row]
    X, _ = make(0)
    estimator = SpreadICA(n_components, source="adaptive", random_state=0)
    start = estimator._start(X.astype(float))
    Y = estimator._spread_copies(start.X_centred, start.spread, start.rng)
    _, _, sampling = _modules("skspread")
    density_module = importlib.import_module("skspread._source_density")
    density, mixing = density_module.start_density("adaptive", Y, start.mixing)
    draw_sets = sampling._draw_sets(len(Y), n_draws, n_components, start.rng)
    fresh = sampling._draw_sets(len(Y), n_draws, n_components, start.rng)
    parameters = (density.weights, density.means, density.variances)
    return Y, mixing, start.total_variance, draw_sets, fresh, parameters


def _evaluate(modules, Y, mixing, total_variance, draw_sets, parameters, batch_size=256):
    """One EM evaluation with a version's modules; its seconds and new mixing matrix."""
    em, density_module, _ = modules
    # A fresh density, as in a fit: its log-density table is built in the evaluation.
    density = density_module.MixtureSourceDensity(*parameters)
    start = time.perf_counter()
    step = em._em_step(Y, mixing, total_variance, draw_sets, density, batch_size)
    new_mixing, _ = density_module.update_density(density, step.histogram, step.mixing)
    return time.perf_counter() - start, new_mixing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git ref to compare with")
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--draws", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "ica_em_step.md")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_ica_em_step.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    with tempfile.TemporaryDirectory() as folder:
        versions = {
            args.baseline: _modules(_baseline_package(args.baseline, folder)),
            "this checkout": _modules("skspread"),
        }
        lines = [
            "# Seconds per SpreadICA EM evaluation, side by side",
            "",
            f"Command: `{command.strip()}`",
            "",
            f"Python {platform.python_version()}, {platform.machine()}; the two "
            f"versions interleaved, fastest of {args.repeats} evaluations each, on a "
            "machine shared with other jobs (compare the ratios, not the seconds). "
            "Inputs: the start of a default fit (seed 0). 'accuracy' is |A(this) - "
            "A(baseline)| over the EM map's Monte Carlo error at the same draws "
            "(below 1: the versions agree within it).",
            "",
            f"| row | draws | threads | s/eval {args.baseline} | s/eval this checkout "
            "| speed-up | accuracy |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in args.rows:
            for n_draws in args.draws:
                Y, mixing, total_variance, draw_sets, fresh, parameters = _inputs(row, n_draws)
                for n_threads in args.threads:
                    with threadpool_limits(limits=n_threads):
                        seconds = {name: [] for name in versions}
                        mapped = {}
                        names = list(versions)
                        for repeat in range(args.repeats):
                            for name in names if repeat % 2 == 0 else names[::-1]:
                                elapsed, mapped[name] = _evaluate(
                                    versions[name], Y, mixing, total_variance, draw_sets,
                                    parameters,
                                )
                                seconds[name].append(elapsed)
                        _, other = _evaluate(
                            versions["this checkout"], Y, mixing, total_variance, fresh,
                            parameters,
                        )
                    norm = np.linalg.norm(mapped["this checkout"])
                    monte_carlo = np.linalg.norm(other - mapped["this checkout"]) / np.sqrt(2)
                    agreement = np.linalg.norm(mapped["this checkout"] - mapped[args.baseline])
                    before, after = (min(seconds[name]) for name in names)
                    lines.append(
                        f"| {row} | {n_draws} | {n_threads} | {before:.3f} | {after:.3f} | "
                        f"x{before / after:.2f} | {agreement / monte_carlo:.1e} "
                        f"(MC error {monte_carlo / norm:.1e}) |"
                    )
                    print(lines[-1], flush=True)
        text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
