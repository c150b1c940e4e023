"""The showcase behind ``python -m skspread``: the paper's claims on built-in data.

Three parts, each a function that returns rows of the summary table:

1. the line model x = z theta (paper eq 7-12): the noise-only maximum
   likelihood estimate shrinks theta by the factor of eq 12, the spread
   estimate does not;
2. deterministic non-square ICA: SpreadICA beside FastICA (error and time);
3. the delta-VAE on scikit-learn's ``load_digits`` beside the standard VAE at
   the spread scale 'auto' (Frechet distance of samples to data, lower is better),
   with a PNG of samples (needs torch; skipped with a note without it).

The figures are drawn with matplotlib (``pip install "skspread[plot]"``);
without it the showcase still prints its table and says that it drew no
figures.
"""

import importlib.util
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Row:
    """One line of the summary table."""

    part: str
    method: str
    measure: str
    value: float
    seconds: float


@dataclass(frozen=True)
class Settings:
    """Problem sizes of one run of the showcase."""

    line_sizes: tuple
    ica_samples: int
    ica_importance_samples: int
    vae_epochs: int
    vae_hidden: tuple


DEFAULT = Settings(
    line_sizes=(1_000, 10_000, 100_000, 200_000),
    ica_samples=5_000,
    ica_importance_samples=1_000,
    vae_epochs=100,
    vae_hidden=(256, 256),
)
QUICK = Settings(
    line_sizes=(1_000, 20_000),
    ica_samples=2_000,
    ica_importance_samples=200,
    vae_epochs=3,
    vae_hidden=(64,),
)

# The line model of the paper's section 1.1.1: theta_p of norm 2 in D = 5,
# noise (model noise or spread) of variance sigma^2 = 1.
LINE_NORM = 2.0
LINE_FEATURES = 5
LINE_NOISE_VARIANCE = 1.0
# Non-square deterministic ICA: D = 10 observations of K = 5 Laplace sources.
ICA_FEATURES = 10
ICA_COMPONENTS = 5


def _has_module(name):
    return importlib.util.find_spec(name) is not None


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None if absent."""
    if not _has_module("matplotlib"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def image_grid(images, n_columns, pad=1, zoom=4):
    """Tile images of shape (n, height, width) into one padded, zoomed image."""
    images = np.asarray(images, dtype=float)
    n_images, height, width = images.shape
    n_rows = math.ceil(n_images / n_columns)
    grid = np.ones((n_rows * (height + pad) + pad, n_columns * (width + pad) + pad))
    for index, image in enumerate(images):
        row, column = divmod(index, n_columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        grid[top : top + height, left : left + width] = image
    return np.kron(grid, np.ones((zoom, zoom)))


def line_model(settings, output, random_state, log):
    """Part 1: noise-only versus spread maximum likelihood on the line model."""
    from . import SpreadFactorAnalysis
    from .datasets import make_line

    rng = np.random.default_rng(random_state)
    direction = rng.standard_normal(LINE_FEATURES)
    theta = LINE_NORM * direction / np.linalg.norm(direction)
    biased_norm = math.sqrt(LINE_NORM**2 - LINE_NOISE_VARIANCE)
    estimators = {
        "spread MLE": SpreadFactorAnalysis(
            n_components=1,
            spread="gaussian",
            spread_scale=math.sqrt(LINE_NOISE_VARIANCE),
            noise_variance=0.0,
        ),
        "noise-only MLE": SpreadFactorAnalysis(
            n_components=1, spread=None, noise_variance=LINE_NOISE_VARIANCE
        ),
    }
    norms = {name: [] for name in estimators}
    seconds = {}
    for n_samples in settings.line_sizes:
        X = make_line(n_samples, theta, random_state=random_state).data
        for name, estimator in estimators.items():
            _, seconds[name] = _timed(estimator.fit, X)
            norms[name].append(float(np.linalg.norm(estimator.components_[0])))
        log(
            f"  N = {n_samples:>7}: |theta| spread {norms['spread MLE'][-1]:.3f}, "
            f"noise-only {norms['noise-only MLE'][-1]:.3f}"
        )

    plt = _pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, marker in zip(estimators, ["o-", "s-"]):
            ax.semilogx(settings.line_sizes, norms[name], marker, label=name)
            ax.annotate(
                f"{norms[name][-1]:.3f}",
                (settings.line_sizes[-1], norms[name][-1]),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                fontsize=8,
            )
        ax.axhline(LINE_NORM, color="k", ls=":", label=f"true |theta| = {LINE_NORM:.3f}")
        ax.axhline(
            biased_norm, color="C3", ls="--", label=f"noise-only optimum (eq 12) = {biased_norm:.3f}"
        )
        ax.set(
            xlabel="number of samples N",
            ylabel="estimated |theta|",
            title="Line model x = z theta (eq 7-12), noise variance 1:\n"
            "spread MLE finds |theta|, noise-only MLE shrinks it",
        )
        ax.legend(fontsize=8, loc="center right")
        fig.tight_layout()
        fig.savefig(output / "line_model.png", dpi=100)
        plt.close(fig)

    n_largest = settings.line_sizes[-1]
    return [
        Row("line", "spread MLE", f"|theta| (true {LINE_NORM:.3f}), N={n_largest}",
            norms["spread MLE"][-1], seconds["spread MLE"]),
        Row("line", "noise-only MLE", f"|theta| (eq 12: {biased_norm:.3f}), N={n_largest}",
            norms["noise-only MLE"][-1], seconds["noise-only MLE"]),
    ]


def deterministic_ica(settings, output, random_state, log):
    """Part 2: SpreadICA beside FastICA on noise-free non-square ICA."""
    from sklearn.decomposition import FastICA

    from . import SpreadICA
    from .datasets import make_ica
    from .metrics import mixing_error

    data = make_ica(
        settings.ica_samples,
        n_features=ICA_FEATURES,
        n_components=ICA_COMPONENTS,
        noise_std=0.0,
        random_state=random_state,
    )
    estimators = {
        "SpreadICA": SpreadICA(
            n_components=ICA_COMPONENTS,
            n_importance_samples=settings.ica_importance_samples,
            random_state=random_state,
        ),
        "FastICA": FastICA(
            n_components=ICA_COMPONENTS,
            whiten="unit-variance",
            max_iter=1000,
            random_state=random_state,
        ),
    }
    rows, errors, times = [], {}, {}
    for name, estimator in estimators.items():
        _, times[name] = _timed(estimator.fit, data.data)
        errors[name] = mixing_error(estimator.mixing_, data.mixing)
        log(f"  {name}: mixing error {errors[name]:.4f} in {times[name]:.2f} s")
        rows.append(Row("ica", name, "mixing error (lower is better)", errors[name], times[name]))
    log(
        f"  SpreadICA / FastICA: error {errors['SpreadICA'] / errors['FastICA']:.2f}, "
        f"time {times['SpreadICA'] / times['FastICA']:.1f} (error: lower is better)."
    )
    log("  Without noise both recover the mixing; SpreadICA is the EM that does not")
    log("  freeze (eq 43-45), and it is more accurate than FastICA with observation")
    log("  noise (README, ICA benchmark).")

    plt = _pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 4))
        bars = ax.bar(list(errors), list(errors.values()), color=["C0", "C1"])
        ax.bar_label(
            bars, labels=[f"{errors[name]:.4f}\n{times[name]:.2f} s" for name in errors]
        )
        ax.set_ylim(0, 1.3 * max(errors.values()))
        ax.set(
            xlabel="estimator (bar label: error and fit time)",
            ylabel="relative mixing error (lower is better)",
            title=f"Noise-free non-square ICA: D={ICA_FEATURES}, K={ICA_COMPONENTS}, "
            f"N={settings.ica_samples}",
        )
        fig.tight_layout()
        fig.savefig(output / "ica.png", dpi=100)
        plt.close(fig)
    return rows


def _fit_single_threaded(model, X):
    """Fit with one torch thread: on these small networks, intra-operation
    threads cost more in synchronisation than they gain (measured: about 4x
    the CPU time with two threads on a busy two-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return model.fit(X)
    finally:
        torch.set_num_threads(threads)


def delta_vae(settings, output, random_state, log, device="auto"):
    """Part 3: the delta-VAE and the standard VAE on load_digits."""
    from sklearn.datasets import load_digits

    from . import DeltaVAE
    from .metrics import frechet_distance

    X = load_digits().data / 16.0
    shared = dict(
        n_components=8,
        hidden_layer_sizes=settings.vae_hidden,
        n_epochs=settings.vae_epochs,
        batch_size=64,
        device=device,
        random_state=random_state,
    )
    models = {
        "delta-VAE (Gaussian spread)": DeltaVAE(spread="gaussian", **shared),
        "VAE (noise on model only)": DeltaVAE(spread=None, **shared),
    }
    rows, grids, distances = [], [], {}
    for name, model in models.items():
        _, seconds = _timed(_fit_single_threaded, model, X)
        samples = model.sample(len(X), random_state=random_state)
        distance = frechet_distance(samples, X)
        distances[name] = distance
        log(f"  {name}: pixel Frechet distance {distance:.3f} in {seconds:.1f} s")
        rows.append(Row("digits", name, "pixel Frechet distance (lower is better)",
                        distance, seconds))
        grids.append((name, distance, seconds, image_grid(samples[:64].reshape(-1, 8, 8), 8)))
    spread_name, vae_name = models
    log(
        f"  delta-VAE / VAE: {distances[spread_name] / distances[vae_name]:.2f} of the VAE's "
        "distance (lower is better: below 1, the delta-VAE's samples are closer to the data)."
    )
    log(
        f"  Both at spread scale 'auto' = {models[spread_name].spread_scale_:.3f}, on "
        f"{len(X)} images of 8x8 pixels, {settings.vae_epochs} epochs."
    )
    log("  The README's MNIST benchmark compares them on 60000 images in a feature")
    log("  space; the delta-VAE's lead there depends on the spread scale.")
    plt = _pyplot()
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 4.8), layout="constrained")
        for ax, (name, distance, seconds, grid) in zip(axes, grids):
            ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(f"{name}\npixel Frechet distance {distance:.3f}, fit {seconds:.0f} s",
                         fontsize=9)
            ax.axis("off")
        fig.suptitle(
            "64 samples g(z) of each model trained on load_digits\n"
            "(Frechet distance of all samples to the data: lower is better)",
            fontsize=10,
        )
        fig.savefig(output / "delta_vae_samples.png", dpi=100)
        plt.close(fig)
    return rows


def format_table(rows):
    """The summary table as text, one row per method."""
    header = ("part", "method", "measure", "value", "time [s]")
    body = [
        (row.part, row.method, row.measure, f"{row.value:.4f}", f"{row.seconds:.2f}")
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        cells = [
            cell.rjust(width) if i >= 3 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run(output, quick=False, random_state=0, deep=True, device="auto", log=print):
    """Run the showcase and write its table and figures to ``output``.

    Parameters
    ----------
    output : str or path-like
        Folder for the figures and ``summary.txt`` (created if missing).
    quick : bool, default=False
        Small problem sizes, for tests (seconds instead of minutes).
    random_state : int, default=0
        Seed of the data and the estimators.
    deep : bool, default=True
        Whether to run the delta-VAE part (skipped anyway without torch).
    device : str, default='auto'
        Device of the delta-VAE.
    log : callable, default=print
        Receives the progress lines.

    Returns
    -------
    rows : list of Row
        The rows of the summary table.
    """
    settings = QUICK if quick else DEFAULT
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    parts = [
        ("noise-only bias on the line model (paper eq 12)", line_model),
        ("deterministic non-square ICA: SpreadICA and FastICA", deterministic_ica),
    ]
    skipped = None
    if not deep:
        skipped = "the delta-VAE part is skipped (--no-deep)."
    elif not _has_module("torch"):
        skipped = (
            "the delta-VAE part is skipped: torch is not installed "
            '(pip install "skspread[deep]").'
        )
    else:
        parts.append(
            (
                "delta-VAE on load_digits",
                lambda *args: delta_vae(*args, device=device),
            )
        )
    rows = []
    start = time.perf_counter()
    for index, (title, part) in enumerate(parts, start=1):
        log(f"[{index}/{len(parts)}] {title}")
        part_rows, seconds = _timed(part, settings, output, random_state, log)
        log(f"      done in {seconds:.1f} s")
        rows.extend(part_rows)
    if skipped is not None:
        log(f"Note: {skipped}")
    if not _has_module("matplotlib"):
        log('Note: no figures were drawn: they need matplotlib (pip install "skspread[plot]").')
    table = format_table(rows)
    (output / "summary.txt").write_text(table + "\n")
    log("")
    log(table)
    log("")
    written = sorted(path.name for path in output.glob("*.png")) + ["summary.txt"]
    log(f"Written to {output.resolve()}: {', '.join(written)}")
    log(f"Total time {time.perf_counter() - start:.1f} s")
    return rows
