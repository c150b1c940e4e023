"""How much SpreadICA's ``score`` moves with the evaluation seed alone.

The README quickstart's model is fitted once; its mean spread log-likelihood
on the training rows is then evaluated with ``n_seeds`` evaluation seeds
(the seed of the spread copies and importance draws of ``score_samples``,
fixed at fit). Also on the first ``n_rows // 4`` rows, to show how the
spread over seeds shrinks with the number of rows.

Usage (from the repository root)::

    python benchmarks/bench_ica_score_seed.py --n-seeds 5 100 --label after
"""

import argparse
import time

import numpy as np

from skspread import SpreadICA
from skspread.datasets import make_ica


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seeds", type=int, nargs="+", default=[5, 100])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    ica = make_ica(2000, n_features=10, n_components=5, random_state=0)
    start = time.perf_counter()
    model = SpreadICA(n_components=5, random_state=0).fit(ica.data)
    fit_seconds = time.perf_counter() - start
    score = model.score(ica.data)
    print(f"{args.label}: fit {fit_seconds:.1f} s, score at the fit's seed {score:.3f}")
    for n_seeds, n_rows in [(n, rows) for n in args.n_seeds for rows in (500, 2000)]:
        scores = []
        for seed in range(n_seeds):
            model._evaluation_seed = 1000 + seed
            scores.append(model.score(ica.data[:n_rows]))
        scores = np.array(scores)
        print(
            f"| {args.label} | {n_rows} | {n_seeds} | {scores.mean():.3f} "
            f"+- {scores.std(ddof=1) / np.sqrt(n_seeds):.3f} | {scores.std(ddof=1):.3f} | "
            + (", ".join(f"{score:.2f}" for score in scores) if n_seeds <= 5 else "")
            + " |"
        )


if __name__ == "__main__":
    main()
