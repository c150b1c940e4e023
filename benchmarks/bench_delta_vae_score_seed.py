"""How much DeltaVAE's ``score`` moves with the evaluation seed alone.

A small DeltaVAE is fitted once on the 1797 scikit-learn digits (scaled to
[0, 1]); its mean spread log-likelihood bound (4 spread copies, 1 latent
draw per row) is then evaluated with ``n_seeds`` evaluation seeds (the seed
of the draws of ``score_samples``, fixed at fit), on the first 450 rows and
on all of them.

Usage (from the repository root)::

    python benchmarks/bench_delta_vae_score_seed.py --n-seeds 5 30 --label after
"""

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

from skspread import DeltaVAE


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seeds", type=int, nargs="+", default=[5, 30])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    X = load_digits().data / 16
    start = time.perf_counter()
    model = DeltaVAE(
        n_components=4, hidden_layer_sizes=(64,), n_epochs=20, device="cpu", random_state=0
    ).fit(X)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    score = model.score(X)
    score_seconds = time.perf_counter() - start
    print(f"{args.label}: fit {fit_seconds:.1f} s, score {score:.3f} in {score_seconds:.2f} s")
    for n_seeds, n_rows in [(n, rows) for n in args.n_seeds for rows in (450, len(X))]:
        scores = []
        for seed in range(n_seeds):
            model._evaluation_seed = 1000 + seed
            scores.append(model.score(X[:n_rows]))
        scores = np.array(scores)
        print(
            f"| {args.label} | {n_rows} | {n_seeds} | {scores.mean():.3f} "
            f"+- {scores.std(ddof=1) / np.sqrt(n_seeds):.3f} | {scores.std(ddof=1):.3f} | "
            + (", ".join(f"{score:.2f}" for score in scores) if n_seeds <= 5 else "")
            + " |"
        )


if __name__ == "__main__":
    main()
