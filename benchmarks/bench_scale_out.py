"""Scale-out benchmark: streaming fits past memory, next to in-memory fits.

Run from the repository root:

    python benchmarks/bench_scale_out.py

Section "factor_analysis": SpreadFactorAnalysis.partial_fit over ``--rows``
generated rows of a factor model, in blocks of ``--block-rows`` (the data
never exist whole), then FactorAnalysis, PCA and SpreadFactorAnalysis on the
first ``--in-memory-rows`` rows held in memory, side by side in the same
run. Every measurement runs in its own Python process, so that its peak
resident memory (VmHWM, see peak_rss_mib) is its own; a row's time
excludes generating the data. Writes benchmarks/results/scale_out.md with
the command that made it.

Section "delta_vae": one epoch of DeltaVAE on rows held in memory, on the
same rows as a numpy.memmap, and data-parallel in 2 processes with
``skspread.deep.fit_distributed`` (gloo on the CPU).

Section "delta_vae_memory": one epoch on a ``--vae-memmap-gib`` GiB memmap in
a fresh process, for the peak resident memory of the whole process.

Sections are functions of the parsed arguments that return Markdown lines
(``SECTIONS``); ``--sections`` picks which ones run.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn

RESULTS = Path(__file__).resolve().parent / "results" / "scale_out.md"
MEBIBYTE = 2**20


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB.

    On Linux, VmHWM of /proc/self/status: the ru_maxrss of a process started
    by ``subprocess`` also holds its parent's resident memory when it
    started (Linux keeps the larger across exec), VmHWM only this program's.
    Elsewhere ru_maxrss (in KiB on Linux).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MEBIBYTE
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MEBIBYTE


# ---------------------------------------------------------------------------
# Section factor_analysis
# ---------------------------------------------------------------------------


def factor_model(n_features, n_components, seed=0):
    """Loadings, noise variances and mean of the generating factor model."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n_components, n_features))
    noise = rng.uniform(0.3, 1.0, n_features)
    mean = rng.uniform(-3.0, 3.0, n_features)
    return loadings, noise, mean


# Rows are generated in chunks of this many, each from its own seed: row i
# is the same in every run and block size, and generating a block needs
# temporaries of one chunk only (so they do not hide a fit's own memory).
CHUNK_ROWS = 10_000


def generate_rows(model, first_row, out):
    """Fill ``out`` with rows ``first_row, first_row + 1, ...`` of the data set."""
    loadings, noise, mean = model
    for begin in range(0, len(out), CHUNK_ROWS):
        chunk = out[begin : begin + CHUNK_ROWS]
        rng = np.random.default_rng([1, (first_row + begin) // CHUNK_ROWS])
        chunk[:] = rng.standard_normal(chunk.shape)
        chunk *= np.sqrt(noise)
        chunk += rng.standard_normal((len(chunk), len(loadings))) @ loadings
        chunk += mean
    return out


def block_sizes(n_rows, block_rows):
    if block_rows % CHUNK_ROWS:
        raise ValueError(f"--block-rows must be a multiple of {CHUNK_ROWS}.")
    sizes = [block_rows] * (n_rows // block_rows)
    if n_rows % block_rows:
        sizes.append(n_rows % block_rows)
    return sizes


def covariance_error(fitted, model):
    """Relative Frobenius error of the fitted model covariance against the true one."""
    loadings, noise, _ = model
    truth = loadings.T @ loadings + np.diag(noise)
    return float(np.linalg.norm(fitted.get_covariance() - truth) / np.linalg.norm(truth))


def run_stream(task):
    """partial_fit over generated blocks; the data are never held whole."""
    from skspread import SpreadFactorAnalysis

    model = factor_model(task["n_features"], task["n_components"])
    baseline = peak_rss_mib()
    estimator = SpreadFactorAnalysis(task["n_components"], noise_variance="diagonal")
    generate_seconds = fit_seconds = last_refit = 0.0
    buffer = np.empty((task["block_rows"], task["n_features"]))
    first_row = 0
    for size in block_sizes(task["rows"], task["block_rows"]):
        start = time.perf_counter()
        block = generate_rows(model, first_row, buffer[:size])
        first_row += size
        generate_seconds += time.perf_counter() - start
        start = time.perf_counter()
        estimator.partial_fit(block)
        last_refit = time.perf_counter() - start
        fit_seconds += last_refit
    return {
        "seconds": fit_seconds,
        "generate_seconds": generate_seconds,
        "last_call_seconds": last_refit,
        "peak_mib": peak_rss_mib(),
        "baseline_mib": baseline,
        "n_iter": estimator.n_iter_,
        "rows_seen": estimator.n_samples_seen_,
        "covariance_error": covariance_error(estimator, model),
    }


def run_in_memory(task):
    """One estimator on the first rows, held in memory (generated block by block into X)."""
    from sklearn.decomposition import PCA, FactorAnalysis

    from skspread import SpreadFactorAnalysis

    model = factor_model(task["n_features"], task["n_components"])
    X = generate_rows(model, 0, np.empty((task["rows"], task["n_features"])))
    # The peak so far holds X and one chunk's temporaries; the fit's own
    # memory is the rest.
    with_data = peak_rss_mib()
    k = task["n_components"]
    estimators = {
        "PCA": lambda: PCA(k),
        "FactorAnalysis": lambda: FactorAnalysis(k),
        "SpreadFactorAnalysis.fit": lambda: SpreadFactorAnalysis(k, noise_variance="diagonal"),
        "SpreadFactorAnalysis.partial_fit": lambda: SpreadFactorAnalysis(
            k, noise_variance="diagonal"
        ),
    }
    estimator = estimators[task["estimator"]]()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task["estimator"].endswith("partial_fit"):
            for begin in range(0, len(X), task["block_rows"]):
                estimator.partial_fit(X[begin : begin + task["block_rows"]])
        else:
            estimator.fit(X)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mib": peak_rss_mib(),
        "baseline_mib": with_data,
        "data_mib": X.nbytes / MEBIBYTE,
        "n_iter": getattr(estimator, "n_iter_", 1),
        "covariance_error": covariance_error(estimator, model),
    }


def in_subprocess(task, variables=None):
    """Run a task in a fresh interpreter (its own peak memory) and return its result.

    ``variables``: environment variables to set for it.
    """
    environment = dict(os.environ, **(variables or {}))
    root = str(Path(__file__).resolve().parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(
        path for path in (root, environment.get("PYTHONPATH")) if path
    )
    output = subprocess.run(
        [sys.executable, __file__, "--task", json.dumps(task)],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def factor_analysis_section(args):
    common = {
        "n_features": args.n_features,
        "n_components": args.n_components,
        "block_rows": args.block_rows,
    }
    # Two lengths of stream: the memory should not grow with the rows.
    streams = []
    for n_rows in (args.rows // 10, args.rows):
        streams.append(in_subprocess({"kind": "stream", "rows": n_rows, **common}))
        print(f"stream: {streams[-1]}", flush=True)
    rows = []
    for name in (
        "PCA",
        "FactorAnalysis",
        "SpreadFactorAnalysis.fit",
        "SpreadFactorAnalysis.partial_fit",
    ):
        result = in_subprocess(
            {"kind": "in_memory", "rows": args.in_memory_rows, "estimator": name, **common}
        )
        print(f"{name}: {result}", flush=True)
        rows.append((name, result))

    block_mib = args.block_rows * args.n_features * 8 / MEBIBYTE
    lines = [
        "## SpreadFactorAnalysis.partial_fit past memory",
        "",
        f"Factor model D = {args.n_features}, K = {args.n_components} (noise variances "
        f"uniform on [0.3, 1], means uniform on [-3, 3]), "
        "`SpreadFactorAnalysis(K, noise_variance='diagonal')` at its defaults (spread "
        "'auto'). Time is that of `partial_fit` / `fit` alone, not of generating the "
        "rows. Peak memory is the process's ru_maxrss; 'beyond' subtracts the peak "
        "before the fit (the interpreter and imports, plus X for the in-memory fits). "
        "Covariance error: relative Frobenius error of the model covariance "
        "W^T W + diag(Psi) against the generating one.",
        "",
        f"Streaming: blocks of {args.block_rows:,} rows ({block_mib:.0f} MiB each), "
        "generated one at a time into the same buffer; the whole data would take "
        f"{args.rows * args.n_features * 8 / 2**30:.1f} GiB as float64 at the longest "
        "stream. 'Beyond imports' includes that one block.",
        "",
        "| rows | partial_fit time (s) | rows per second | last call (s) | generating (s) "
        "| peak memory (MiB) | beyond imports (MiB) | EM iterations (last refit) "
        "| covariance error |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stream in streams:
        lines.append(
            f"| {stream['rows_seen']:,} | {stream['seconds']:.1f} "
            f"| {stream['rows_seen'] / stream['seconds']:,.0f} "
            f"| {stream['last_call_seconds']:.3f} | {stream['generate_seconds']:.1f} "
            f"| {stream['peak_mib']:.0f} | {stream['peak_mib'] - stream['baseline_mib']:.0f} "
            f"| {stream['n_iter']} | {stream['covariance_error']:.2e} |"
        )
    lines += [
        "",
        f"In memory, side by side: the first {args.in_memory_rows:,} of those rows as one "
        f"float64 array X ({rows[0][1]['data_mib']:.0f} MiB), one process per estimator "
        "at scikit-learn's defaults (FactorAnalysis: randomized SVD, tol 1e-2 on the "
        "summed log-likelihood); partial_fit over the same blocks of X.",
        "",
        "| estimator | time (s) | rows per second | ratio to PCA time | peak memory (MiB) "
        "| beyond X (MiB) | beyond X / size of X | iterations | covariance error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pca_seconds = rows[0][1]["seconds"]
    for name, result in rows:
        beyond = max(result["peak_mib"] - result["baseline_mib"], 0.0)
        lines.append(
            f"| {name} | {result['seconds']:.2f} "
            f"| {args.in_memory_rows / result['seconds']:,.0f} "
            f"| {result['seconds'] / pca_seconds:.2f} | {result['peak_mib']:.0f} "
            f"| {beyond:.0f} | {beyond / result['data_mib']:.2f} | {result['n_iter']} "
            f"| {result['covariance_error']:.2e} |"
        )
    lines += [
        "",
        "ru_maxrss only grows: 'beyond X' counts what a fit needs above X and the "
        f"temporaries of generating one chunk of {CHUNK_ROWS:,} rows.",
    ]
    return lines


# ---------------------------------------------------------------------------
# Section delta_vae: out-of-core and data-parallel DeltaVAE
# ---------------------------------------------------------------------------

VAE_FEATURES = 256


def write_vae_data(path, n_rows, n_features=VAE_FEATURES):
    """A float32 file of rows on a curved 4-dimensional manifold, written in chunks."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((8, n_features)).astype(np.float32) / np.sqrt(8)
    with open(path, "wb") as file:
        for begin in range(0, n_rows, 65536):
            latent = rng.standard_normal((min(65536, n_rows - begin), 4)).astype(np.float32)
            rows = np.concatenate([latent, np.tanh(2 * latent)], axis=1) @ mixing
            file.write(rows.astype(np.float32).tobytes())


def run_vae(task):
    """One DeltaVAE fit of one epoch: in memory, on a memmap, or data-parallel."""
    import torch

    from skspread import DeltaVAE
    from skspread.deep import fit_distributed

    torch.set_num_threads(task["threads"])
    X = np.memmap(
        task["path"], dtype=np.float32, mode="r", shape=(task["rows"], task["n_features"])
    )
    if task["data"] == "in memory":
        X = np.array(X)
    baseline = peak_rss_mib()
    estimator = DeltaVAE(
        n_components=4,
        hidden_layer_sizes=tuple(task["hidden"]),
        batch_size=task["batch_size"],
        n_epochs=1,
        device="cpu",
        random_state=0,
    )
    start = time.perf_counter()
    if task["processes"] > 1:
        fit_distributed(estimator, X, n_processes=task["processes"])
        # ru_maxrss of the largest training process.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / MEBIBYTE
    else:
        estimator.fit(X)
        peak = peak_rss_mib()
    return {
        "wall_seconds": time.perf_counter() - start,
        "epoch_seconds": estimator.history_[-1]["time"],
        "loss": estimator.history_[-1]["loss"],
        "peak_mib": peak,
        "baseline_mib": baseline,
        "data_mib": task["rows"] * task["n_features"] * 4 / MEBIBYTE,
    }


def delta_vae_section(args):
    import tempfile

    folder = tempfile.mkdtemp(prefix="skspread-bench-")
    path = os.path.join(folder, "rows.f32")
    write_vae_data(path, args.vae_rows)
    common = {"path": path, "n_features": VAE_FEATURES, "hidden": args.vae_hidden}
    runs = [
        ("in memory", 1, 1, args.vae_rows),
        ("memmap", 1, 1, args.vae_rows),
        ("in memory", 1, 2, args.vae_rows),
        ("memmap", 2, 2, args.vae_rows),
        ("in memory", 2, 2, args.vae_rows),
    ]
    results = []
    try:
        for data, processes, threads, rows in runs:
            task = {
                "kind": "vae",
                "data": data,
                "processes": processes,
                "threads": threads,
                "rows": rows,
                "batch_size": args.vae_batch_size,
                **common,
            }
            results.append((task, in_subprocess(task)))
            print(f"delta_vae {data} x{processes}: {results[-1][1]}", flush=True)
    finally:
        os.remove(path)
        os.rmdir(folder)

    hidden = ", ".join(map(str, args.vae_hidden))
    lines = [
        "## DeltaVAE: out of core and data-parallel",
        "",
        f"One epoch of `DeltaVAE(n_components=4, hidden_layer_sizes=({hidden},), "
        f"batch_size={args.vae_batch_size}, device='cpu')` on {args.vae_rows:,} float32 rows "
        f"of D = {VAE_FEATURES} (a curved 4-dimensional manifold), read from a file: held "
        "in memory (`np.array` of the memmap), or as the `numpy.memmap` itself (rows "
        "read batch by batch), in 1 process or with `fit_distributed` in 2 processes "
        "(gloo, one torch thread each, the same global batch). 'Epoch' is the epoch's "
        "time in `history_`; 'wall' adds set-up (for 2 processes: starting them, "
        "importing torch and skspread, joining the group). Peak memory: ru_maxrss of "
        "the fitting process (for 2 processes, of the larger one); 'beyond' subtracts "
        "the peak before the fit (interpreter, imports and, in memory, the data).",
        "",
        "| data | processes | torch threads per process | epoch (s) | rows per second "
        "| rows per second per process | ratio to 1 process, 1 thread | wall (s) "
        "| peak memory (MiB) | beyond (MiB) | loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    reference = results[0][1]["epoch_seconds"]
    for task, result in results:
        rate = task["rows"] / result["epoch_seconds"]
        lines.append(
            f"| {task['data']} | {task['processes']} | {task['threads'] // task['processes']} "
            f"| {result['epoch_seconds']:.1f} | {rate:,.0f} | {rate / task['processes']:,.0f} "
            f"| {reference / result['epoch_seconds']:.2f} | {result['wall_seconds']:.1f} "
            f"| {result['peak_mib']:.0f} | {result['peak_mib'] - result['baseline_mib']:.0f} "
            f"| {result['loss']:.2f} |"
        )
    return lines


def delta_vae_memory_section(args):
    import tempfile

    folder = tempfile.mkdtemp(prefix="skspread-bench-")
    path = os.path.join(folder, "rows.f32")
    n_rows = int(args.vae_memmap_gib * 2**30) // (4 * VAE_FEATURES)
    write_vae_data(path, n_rows)
    task = dict(kind="vae", data="memmap", processes=1, threads=1, rows=n_rows, batch_size=4096)
    task.update(path=path, n_features=VAE_FEATURES)
    # glibc's default raises its mmap threshold to the largest block freed:
    # blocks of a few MiB (a batch's tensors) then come from the heap, which
    # keeps freed memory. A fixed threshold returns them at once.
    threshold = {"MALLOC_MMAP_THRESHOLD_": "1048576"}
    settings = [
        (args.vae_hidden, "glibc defaults", {}),
        (args.vae_hidden, "MALLOC_MMAP_THRESHOLD_=1048576", threshold),
        ([16], "glibc defaults", {}),
    ]
    results = []
    try:
        for hidden, name, variables in settings:
            results.append((hidden, name, in_subprocess(dict(task, hidden=hidden), variables)))
            print(f"delta_vae_memory {n_rows} rows, {hidden}, {name}: {results[-1][2]}", flush=True)
    finally:
        os.remove(path)
        os.rmdir(folder)
    return [
        "## DeltaVAE: peak memory on a memmap larger than the budget",
        "",
        "One epoch of `DeltaVAE(n_components=4, hidden_layer_sizes=..., batch_size=4096, "
        f"device='cpu')`, one torch thread, on a {results[0][2]['data_mib'] / 1024:.2f} GiB "
        f"float32 memmap ({n_rows:,} rows of D = {VAE_FEATURES}) in a fresh process; hidden "
        "layers (16,) are those of the slow test in tests/test_deep_out_of_core.py. Peak "
        "memory: the process's own peak resident memory (VmHWM, not its ru_maxrss, which "
        "would include that of the benchmark's process), in MiB and in MB (10^6 bytes); "
        "'before the fit': its peak after importing numpy, scikit-learn, torch and skspread "
        "(scikit-learn imports pandas and pyarrow when installed, as by the `distributed` extra).",
        "",
        "| hidden layers | malloc | peak memory (MiB) | peak memory (MB) | before the fit "
        "(MiB) | fit (MiB) | epoch (s) | rows per second | wall with the statistics pass (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ] + [
        f"| {tuple(hidden)} | {name} | {result['peak_mib']:.0f} "
        f"| {result['peak_mib'] * MEBIBYTE / 1e6:.0f} | {result['baseline_mib']:.0f} "
        f"| {result['peak_mib'] - result['baseline_mib']:.0f} "
        f"| {result['epoch_seconds']:.0f} | {n_rows / result['epoch_seconds']:,.0f} "
        f"| {result['wall_seconds']:.0f} |"
        for hidden, name, result in results
    ]


# ---------------------------------------------------------------------------
# Section ica_online
# ---------------------------------------------------------------------------


def ica_online_section(args):
    """SpreadICA.partial_fit over blocks of make_ica data against fit on all of it, one run."""
    from skspread import SpreadICA
    from skspread.datasets import make_ica
    from skspread.metrics import amari_distance

    n_rows, n_blocks = args.ica_rows, args.ica_blocks
    rows, ratios = [], []
    for seed in args.ica_seeds:
        data = make_ica(n_rows, 20, 10, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            batch = SpreadICA(10, random_state=seed).fit(data.data)
            batch_seconds = time.perf_counter() - start
            online = SpreadICA(10, random_state=seed)
            start = time.perf_counter()
            for block in np.array_split(data.data, n_blocks):
                online.partial_fit(block)
            online_seconds = time.perf_counter() - start
        distances = [
            amari_distance(np.linalg.pinv(fitted.mixing_), data.mixing) for fitted in (batch, online)
        ]
        ratios.append((distances[1] / distances[0], online_seconds / batch_seconds))
        rows.append(
            f"| {seed} | {distances[0]:.4f} | {batch_seconds:.1f} | {batch.n_iter_} "
            f"| {distances[1]:.4f} | {online_seconds:.1f} | {online.n_iter_} "
            f"| {ratios[-1][0]:.3f} | {ratios[-1][1]:.1f} |"
        )
    distance_ratio, time_ratio = np.mean(ratios, axis=0)
    return [
        "## SpreadICA.partial_fit (online EM) against fit",
        "",
        f"`make_ica({n_rows}, 20, 10, random_state=seed)` (Laplace sources, noise-free), "
        "`SpreadICA(10, random_state=seed)` at its defaults: `fit` on all rows, and "
        f"`partial_fit` over {n_blocks} blocks in one pass. Amari distance of "
        "pinv(mixing_) to the true mixing; EM iterations summed over the blocks.",
        "",
        "| seed | fit: Amari | fit: s | fit: EM iterations | partial_fit: Amari "
        "| partial_fit: s | partial_fit: EM iterations | Amari ratio | time ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Mean over seeds, online over batch: Amari distance x{distance_ratio:.3f}, "
        f"time x{time_ratio:.1f}.",
    ]


SECTIONS = {
    "factor_analysis": factor_analysis_section,
    "delta_vae": delta_vae_section,
    "delta_vae_memory": delta_vae_memory_section,
    "ica_online": ica_online_section,
}


def replace_section(lines, title, section):
    """``lines`` with the section headed ``title`` replaced by ``section`` (appended if new)."""
    if title not in lines:
        while lines and not lines[-1]:
            lines.pop()
        return lines + [""] + section + [""]
    begin = lines.index(title)
    end = next(
        (i for i in range(begin + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
    )
    return lines[:begin] + section + [""] + lines[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--block-rows", type=int, default=100_000)
    parser.add_argument("--in-memory-rows", type=int, default=500_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--n-components", type=int, default=5)
    parser.add_argument("--vae-rows", type=int, default=100_000)
    parser.add_argument("--vae-batch-size", type=int, default=512)
    parser.add_argument("--vae-hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--vae-memmap-gib", type=float, default=1.0)
    parser.add_argument("--ica-rows", type=int, default=100_000)
    parser.add_argument("--ica-blocks", type=int, default=20)
    parser.add_argument("--ica-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.task:
        task = json.loads(args.task)
        runner = {"stream": run_stream, "in_memory": run_in_memory, "vae": run_vae}[task["kind"]]
        print(json.dumps(runner(task)))
        return

    thread_variables = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    threads = {v: os.environ[v] for v in thread_variables if v in os.environ}
    command = " ".join(
        [f"{v}={n}" for v, n in threads.items()]
        + ["python", "benchmarks/bench_scale_out.py"]
        + [shlex.quote(a) for a in sys.argv[1:]]
    )
    start = time.perf_counter()
    lines = [
        "# Scaling out: streaming and distributed fits",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        "(shared with other jobs while this ran), BLAS threads "
        f"{threads or 'default'}; Python {platform.python_version()}, NumPy "
        f"{np.__version__}, scikit-learn {sklearn.__version__}.",
        "",
    ]
    partial_run = set(args.sections) != set(SECTIONS) and args.output.exists()
    if partial_run:
        # A run of some sections replaces those and keeps the others, each
        # section then saying which command made it.
        lines = args.output.read_text().splitlines()
        lines = [line for line in lines if not line.startswith("Whole run:")]
    for name in args.sections:
        section = SECTIONS[name](args)
        if partial_run:
            lines = replace_section(lines, section[0], section[:1] + ["", f"Command: `{command}`"] + section[1:])
        else:
            lines += section + [""]
    lines.append(f"Whole run: {time.perf_counter() - start:.0f} s.")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
