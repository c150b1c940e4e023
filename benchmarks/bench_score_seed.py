"""How much an estimator's ``score`` moves with the evaluation seed alone.

One model is fitted once; its mean spread log-likelihood is then evaluated
with ``n_seeds`` evaluation seeds (the seed of the spread copies and draws of
``score_samples``, fixed at fit) on the first quarter of the rows and on all
of them, to show how the spread over seeds shrinks with the number of rows.

- ``spread_ica``: the README quickstart's SpreadICA (make_ica 2000 x 10, K = 5).
- ``delta_vae``: a small DeltaVAE on the 1797 scikit-learn digits scaled to
  [0, 1] (4 spread copies, 1 latent draw per row).

Usage (from the repository root)::

    python benchmarks/bench_score_seed.py spread_ica --n-seeds 5 100 --label after
    python benchmarks/bench_score_seed.py delta_vae --n-seeds 5 30 --label after
"""

import argparse
import time

import numpy as np


def _spread_ica():
    from skspread import SpreadICA
    from skspread.datasets import make_ica

    X = make_ica(2000, n_features=10, n_components=5, random_state=0).data
    return SpreadICA(n_components=5, random_state=0), X, (500, len(X))


def _delta_vae():
    import torch
    from sklearn.datasets import load_digits

    from skspread import DeltaVAE

    torch.set_num_threads(1)
    X = load_digits().data / 16
    model = DeltaVAE(
        n_components=4, hidden_layer_sizes=(64,), n_epochs=20, device="cpu", random_state=0
    )
    return model, X, (450, len(X))


ESTIMATORS = {"spread_ica": _spread_ica, "delta_vae": _delta_vae}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("estimator", choices=sorted(ESTIMATORS))
    parser.add_argument("--n-seeds", type=int, nargs="+", default=[5, 30])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    model, X, row_counts = ESTIMATORS[args.estimator]()
    start = time.perf_counter()
    model.fit(X)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    score = model.score(X)
    score_seconds = time.perf_counter() - start
    print(
        f"{args.label}: fit {fit_seconds:.1f} s, score at the fit's seed {score:.3f} "
        f"in {score_seconds:.2f} s"
    )
    for n_seeds, n_rows in [(n, rows) for n in args.n_seeds for rows in row_counts]:
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
