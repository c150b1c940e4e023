"""Benchmark: delta-VAE against the VAE on Fashion-MNIST with convolutional networks.

Trains, on the same convolutional encoder and generator
(``architecture='conv'``) and the same budget, the standard VAE
(spread=None, Gaussian observation noise of the 'auto' variance) and the
delta-VAE with fixed Gaussian and fixed Laplace spread (the same variance).
Sample quality is the Frechet distance between generator samples and the
Fashion-MNIST test set in the feature space of a small convolutional
Fashion-MNIST classifier that the script trains once and caches under
benchmarks/cache/ (its test accuracy is reported). The models train
round-robin on chunks, as in bench_delta_vae_mnist.py, so that a change in a
shared machine's load hits them alike; s/epoch is the median over epochs.

The default budget is reduced to fit about 15 minutes of one CPU core::

    python benchmarks/bench_delta_vae_fashion.py                     # CPU budget
    python benchmarks/bench_delta_vae_fashion.py --n-train 60000 --n-epochs 30 \\
        --n-samples 10000 --device cuda                               # full run

Fashion-MNIST is read from $SKSPREAD_DATA or ../shared/data beside the checkout.
"""

import platform
import sys
import time
from pathlib import Path

import torch
from bench_delta_vae_mnist import (
    RESULTS,
    common_arguments,
    data_home,
    train_and_compare,
    trained_classifier,
)

from skspread import DeltaVAE
from skspread.datasets import load_fashion_mnist
from skspread._testing import resolve_device


def main(argv=None):
    parser = common_arguments(__doc__.split("\n")[0])
    parser.set_defaults(n_train=10000, n_epochs=8, chunk=2000, hidden=[256], n_samples=5000)
    parser.add_argument("--output", default=str(RESULTS / "delta_vae_fashion.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    start = time.perf_counter()
    X_train, y_train = load_fashion_mnist("train", data_home=data_home(), return_X_y=True)
    X_test, y_test = load_fashion_mnist("test", data_home=data_home(), return_X_y=True)
    device = resolve_device(args.device)
    classifier, accuracy = trained_classifier(
        X_train, y_train, X_test, y_test, device, name="fashion_mnist"
    )
    print(f"classifier test accuracy {accuracy:.4f}", flush=True)
    common = dict(
        n_components=args.n_components,
        architecture="conv",
        image_shape=(28, 28),
        hidden_layer_sizes=tuple(args.hidden),
        batch_size=args.batch_size,
        device=str(device),
        random_state=args.seed,
    )
    models = {
        "VAE": DeltaVAE(spread=None, **common),
        "delta-VAE Gaussian": DeltaVAE(spread="gaussian", **common),
        "delta-VAE Laplace": DeltaVAE(spread="laplace", **common),
    }
    rows, reference_distance, figure_path = train_and_compare(
        models, X_train, X_test, classifier, device, args
    )
    vae_distance = rows[0][1]

    sigma = models["delta-VAE Gaussian"].spread_scale_
    command = " ".join(["benchmarks/bench_delta_vae_fashion.py", *sys.argv[1:]])
    lines = [
        "# delta-VAE vs VAE on Fashion-MNIST (convolutional networks)",
        "",
        f"Made by `python {command}`",
        f"on {device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch thread(s)), torch {torch.__version__}; "
        f"total {time.perf_counter() - start:.0f} s. No GPU was lent to this run.",
        "",
        f"Budget (reduced to fit about 15 minutes of one CPU core): {args.n_epochs} epochs "
        f"over the first {args.n_train} training images (partial_fit on chunks of "
        f"{args.chunk}), architecture='conv' (two stride-2 convolutions and a dense layer "
        f"of {args.hidden[0]}, mirrored in the generator), K = {args.n_components}, "
        f"batch {args.batch_size}, Adam 1e-3, seed {args.seed}. Spread 'auto': Gaussian "
        f"sigma = {sigma:.4f}, Laplace of the same variance; the VAE's noise variance is "
        f"sigma^2 = {sigma**2:.4f}.",
        "",
        f"Feature network: small CNN (2 conv + 128-unit layer) trained 2 epochs on the "
        f"60000 training images, test accuracy **{100 * accuracy:.2f} %**. Frechet "
        f"distance (FD) of {args.n_samples} samples g(z) (clipped to [0, 1]) to the 10000 "
        f"test images in its 128-d feature space; reference: {args.n_samples} held-out "
        f"training images give FD {reference_distance:.2f}.",
        "",
        "| model | FD | FD / VAE | median s/epoch | time / VAE (median over chunks) "
        "| last-chunk loss |",
        "|---|---|---|---|---|---|",
    ]
    for name, distance, seconds, time_ratio, model in rows:
        lines.append(
            f"| {name} | {distance:.2f} | {distance / vae_distance:.3f} | {seconds:.2f} | "
            f"{time_ratio:.3f} | {model.history_[-1]['loss']:.2f} |"
        )
    by_name = {row[0]: row for row in rows}
    fixed_names = ("delta-VAE Gaussian", "delta-VAE Laplace")
    fixed = [by_name[name][1] / vae_distance for name in fixed_names]
    slowest = max(by_name[name][3] for name in fixed_names)
    lines += [
        "",
        "Goals:",
        f"- fixed spreads below the VAE's distance: Gaussian {fixed[0]:.3f}, Laplace "
        f"{fixed[1]:.3f} -> {'met' if max(fixed) < 1 else 'NOT met'} at this budget.",
        f"- epoch time within 1.15x of the VAE's: {slowest:.3f} -> "
        f"{'met' if slowest <= 1.15 else 'NOT met'}.",
        "",
        f"![samples]({figure_path.name})",
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
