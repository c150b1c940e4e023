"""Benchmark: delta-VAE against the VAE on MNIST (paper section 4.2, table 1).

Trains, on the same networks and the same budget (epochs over the same
training rows), the standard VAE (spread=None, Gaussian observation noise),
the delta-VAE with fixed Gaussian and fixed Laplace spread, and the delta-VAE
with a learned spread: a low-rank covariance, and a mean transformation (an
injective residual map, the paper's learned spread on CelebA), all with the
spread ELBO, the default objective; and the Gaussian delta-VAE with the
authors' low-variance form of the objective, which is biased (see DeltaVAE's
Notes). Sample quality is the Frechet distance between 10000 generator
samples and the MNIST test set in the feature space of a small convolutional
MNIST classifier, trained once and cached under benchmarks/cache/.

Every epoch shuffles the training rows into chunks; the models train
round-robin, one ``partial_fit`` pass over a chunk each in turn, in an order
that rotates every round, so that a change in the machine's load (a shared
machine) hits every model alike. The time ratio to the VAE is the median over
chunks of the ratio within a round; s/epoch is the median over epochs of the
summed chunk times. (A learned spread starts learning after the first chunk:
its warm-up is one partial_fit pass.)

Usage (the results file records the command that made it)::

    python benchmarks/bench_delta_vae_mnist.py                       # CPU budget
    python benchmarks/bench_delta_vae_mnist.py --n-train 60000 --n-epochs 50 \\
        --hidden 512 512 --device cuda                                # full run

MNIST is read from $SKSPREAD_DATA or ../shared/data beside the checkout.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skspread import DeltaVAE
from skspread.datasets import load_mnist
from skspread._testing import resolve_device
from skspread.metrics import frechet_distance

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS = HERE / "results"
PAPER_FID = {"VAE": 63.0, "fixed": 52.7, "learned": 46.5}


def data_home():
    if "SKSPREAD_DATA" in os.environ:
        return os.environ["SKSPREAD_DATA"]
    return str(HERE.parent.parent / "shared" / "data")


class Classifier(nn.Module):
    """Small CNN; its 128-unit penultimate layer is the feature space."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, X):
        return self.head(self.features(X))


def batched(function, X, device, batch_size=2000):
    outputs = []
    with torch.no_grad():
        for begin in range(0, len(X), batch_size):
            batch = torch.as_tensor(X[begin : begin + batch_size], device=device)
            outputs.append(function(batch).cpu().numpy())
    return np.concatenate(outputs)


def trained_classifier(X_train, y_train, X_test, y_test, device, name="mnist"):
    """Train the feature network once (2 epochs of Adam) and cache it as ``name``."""
    path = CACHE / f"{name}_classifier.pt"
    classifier = Classifier().to(device)
    if path.exists():
        classifier.load_state_dict(torch.load(path, map_location=device))
    else:
        torch.manual_seed(0)
        classifier = Classifier().to(device)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
        X = torch.as_tensor(X_train, device=device)
        y = torch.as_tensor(y_train.astype(np.int64), device=device)
        for _ in range(2):
            order = torch.randperm(len(X), device=device)
            for begin in range(0, len(X), 128):
                index = order[begin : begin + 128]
                optimizer.zero_grad()
                nn.functional.cross_entropy(classifier(X[index]), y[index]).backward()
                optimizer.step()
        CACHE.mkdir(exist_ok=True)
        torch.save(classifier.state_dict(), path)
    classifier.eval()
    predictions = batched(classifier, X_test, device).argmax(axis=1)
    return classifier, float(np.mean(predictions == y_test))


def save_sample_grid(samples_by_model, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(samples_by_model)
    figure, axes = plt.subplots(1, len(names), figsize=(2.0 * len(names), 2.3), dpi=72)
    for axis, name in zip(np.atleast_1d(axes), names):
        images = samples_by_model[name][:36].reshape(6, 6, 28, 28)
        axis.imshow(images.transpose(0, 2, 1, 3).reshape(6 * 28, 6 * 28), cmap="gray")
        axis.set_title(name, fontsize=7)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def train_round_robin(models, training, n_epochs, chunk, seed):
    """Train ``models`` (a dict) round-robin, one partial_fit per chunk each.

    Every epoch shuffles the rows into chunks; within a round the order of
    the models rotates, so that a change in the machine's load hits every
    model alike. Returns the per-chunk times of each model.
    """
    names = list(models)
    chunk_times = {name: [] for name in names}
    shuffler = np.random.RandomState(seed)
    n_chunks = max(1, len(training) // chunk)
    for epoch in range(n_epochs):
        chunks = np.array_split(shuffler.permutation(len(training)), n_chunks)
        for index, rows in enumerate(chunks):
            shift = (epoch * n_chunks + index) % len(names)
            for name in names[shift:] + names[:shift]:
                tic = time.perf_counter()
                models[name].partial_fit(training[rows])
                chunk_times[name].append(time.perf_counter() - tic)
        print(
            f"epoch {epoch + 1}: "
            + ", ".join(
                f"{name} {sum(chunk_times[name][-n_chunks:]):.1f} s" for name in names
            ),
            flush=True,
        )
    return chunk_times


def feature_map(classifier, device):
    """The classifier's feature space, as the ``features`` of frechet_distance."""
    return lambda X: batched(classifier.features, X, device)


def sample_distance(model, features, X_test, n_samples, seed):
    """FD of ``n_samples`` generator samples (clipped to [0, 1]) to the test set."""
    samples = np.clip(model.sample(n_samples, random_state=seed), 0, 1).astype(np.float32)
    return frechet_distance(samples, X_test, features=features), samples


def train_and_compare(models, X_train, X_test, classifier, device, args):
    """Train ``models`` round robin and measure each against the first (the VAE).

    Returns one row per model (name, Frechet distance of its samples to
    ``X_test`` in the classifier's features, median seconds per epoch,
    median time per chunk over the VAE's, the model), the distance of
    held-out training images (the reference), and the path of the sample
    grid saved beside ``args.output``.
    """
    chunk_times = train_round_robin(
        models, X_train[: args.n_train], args.n_epochs, args.chunk, args.seed
    )
    features = feature_map(classifier, device)
    reference_distance = frechet_distance(
        X_train[-args.n_samples :], X_test, features=features
    )
    vae_times = np.array(chunk_times[next(iter(models))])
    rows, samples_by_model = [], {}
    for name, model in models.items():
        distance, samples_by_model[name] = sample_distance(
            model, features, X_test, args.n_samples, args.seed
        )
        times = np.array(chunk_times[name])
        epoch_seconds = np.median(times.reshape(args.n_epochs, -1).sum(axis=1))
        rows.append((name, distance, epoch_seconds, np.median(times / vae_times), model))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    figure_path = Path(args.output).with_suffix(".png")
    save_sample_grid(samples_by_model, figure_path)
    return rows, reference_distance, figure_path


def common_arguments(description):
    """Parser with the budget and model options shared by the MNIST benchmarks."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n-train", type=int, default=20000, help="training rows")
    parser.add_argument("--n-epochs", type=int, default=6)
    parser.add_argument("--chunk", type=int, default=2000, help="rows per partial_fit")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--n-components", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-samples", type=int, default=10000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def prepare(args):
    """MNIST, the device, the feature network and the DeltaVAE settings in common."""
    X_train, y_train = load_mnist("train", data_home=data_home(), return_X_y=True)
    X_test, y_test = load_mnist("test", data_home=data_home(), return_X_y=True)
    device = resolve_device(args.device)
    classifier, accuracy = trained_classifier(X_train, y_train, X_test, y_test, device)
    print(f"classifier test accuracy {accuracy:.4f}", flush=True)
    common = dict(
        n_components=args.n_components,
        hidden_layer_sizes=tuple(args.hidden),
        batch_size=args.batch_size,
        device=str(device),
        random_state=args.seed,
    )
    return X_train, X_test, device, classifier, accuracy, common


def main(argv=None):
    parser = common_arguments(__doc__.split("\n")[0])
    parser.add_argument(
        "--no-low-variance",
        action="store_true",
        help="skip the Gaussian delta-VAE with objective='low_variance'",
    )
    parser.add_argument("--output", default=str(RESULTS / "delta_vae_mnist.md"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    X_train, X_test, device, classifier, accuracy, common = prepare(args)
    models = {
        "VAE": DeltaVAE(spread=None, **common),
        "delta-VAE Gaussian": DeltaVAE(spread="gaussian", **common),
        "delta-VAE Laplace": DeltaVAE(spread="laplace", **common),
        "delta-VAE learned covariance": DeltaVAE(
            spread="gaussian", learn_spread="covariance", spread_rank=20, **common
        ),
        "delta-VAE learned mean map": DeltaVAE(
            spread="gaussian", learn_spread="mean", **common
        ),
    }
    if not args.no_low_variance:
        models["delta-VAE Gaussian, low-variance form"] = DeltaVAE(
            spread="gaussian", objective="low_variance", **common
        )
    rows, reference_distance, figure_path = train_and_compare(
        models, X_train, X_test, classifier, device, args
    )
    vae_distance = rows[0][1]

    scale = models["delta-VAE Gaussian"].spread_scale_
    lines = [
        "# delta-VAE vs VAE on MNIST",
        "",
        "Made by `python " + " ".join(["benchmarks/bench_delta_vae_mnist.py", *sys.argv[1:]])
        + "`",
        f"on {device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads), torch {torch.__version__}; "
        f"total {time.perf_counter() - start:.0f} s.",
        "",
        f"Budget: {args.n_epochs} epochs over the first {args.n_train} MNIST training images "
        f"(partial_fit on chunks of {args.chunk}), "
        f"MLP encoder/generator {tuple(args.hidden)}, K = {args.n_components}, "
        f"batch {args.batch_size}, Adam 1e-3 (spread 1e-4), seed {args.seed}. "
        f"Spread scale 'auto': Gaussian sigma = {scale:.4f}, Laplace b = sigma / sqrt(2) "
        f"(same variance); the VAE's noise variance is sigma^2 = {scale**2:.4f}.",
        "",
        f"Feature network: small CNN (2 conv + 128-unit layer), test accuracy "
        f"**{100 * accuracy:.2f} %**. Frechet distance (FD) of {args.n_samples} generator "
        f"samples g(z) (clipped to [0, 1]) to the 10000 test images in its 128-d "
        f"feature space; reference: {args.n_samples} held-out training images give "
        f"FD {reference_distance:.2f}.",
        "",
        "| model | FD | FD / VAE | paper CelebA FID / VAE | median s/epoch | time / VAE (median over chunks) | last-chunk loss |",
        "|---|---|---|---|---|---|---|",
    ]
    paper = {
        "VAE": "1",
        "delta-VAE Gaussian": f"{PAPER_FID['fixed'] / PAPER_FID['VAE']:.2f} (fixed)",
        "delta-VAE Laplace": f"{PAPER_FID['fixed'] / PAPER_FID['VAE']:.2f} (fixed)",
        "delta-VAE learned covariance": "-",
        "delta-VAE learned mean map": f"{PAPER_FID['learned'] / PAPER_FID['VAE']:.2f} (learned mean map)",
    }
    for name, distance, seconds, time_ratio, model in rows:
        lines.append(
            f"| {name} | {distance:.2f} | {distance / vae_distance:.3f} | "
            f"{paper.get(name, '-')} | {seconds:.2f} | {time_ratio:.3f} | "
            f"{model.history_[-1]['loss']:.2f} |"
        )
    by_name = {row[0]: row for row in rows}
    fixed = [by_name["delta-VAE Gaussian"][1], by_name["delta-VAE Laplace"][1]]
    learned_names = ("delta-VAE learned covariance", "delta-VAE learned mean map")
    learned = min(by_name[name][1] for name in learned_names)
    slowest_fixed = max(by_name[n][3] for n in ("delta-VAE Gaussian", "delta-VAE Laplace"))
    lines += [
        "",
        "Goals:",
        f"- fixed spread below the VAE: Gaussian {fixed[0] / vae_distance:.3f}, "
        f"Laplace {fixed[1] / vae_distance:.3f} -> "
        f"{'met' if max(fixed) < vae_distance else 'NOT met'} (paper 0.84).",
        "- learned spread lower still: "
        + ", ".join(
            f"{name.removeprefix('delta-VAE ')} {by_name[name][1] / vae_distance:.3f}"
            for name in learned_names
        )
        + f"; best {learned / vae_distance:.3f} vs best fixed "
        f"{min(fixed) / vae_distance:.3f} -> "
        f"{'met' if learned < min(fixed) else 'NOT met'} (paper 0.74). With its isotropic "
        "part fixed, the learned covariance can at most match the fixed Gaussian spread's "
        "divergence (data processing; see DeltaVAE's Notes).",
        f"- fixed-spread epoch time within 1.15x of the VAE: {slowest_fixed:.3f} -> "
        f"{'met' if slowest_fixed <= 1.15 else 'NOT met'}.",
        "",
        f"![samples]({figure_path.name})",
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
