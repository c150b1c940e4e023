"""Why SpreadICA stopped at Amari 0.18 on noise-free 'lapuni-6x6' seed 3 (issue 14).

EM stopped after 9 evaluations on the ridge where the learned noise and the
densities' widths trade; it now resumes from the ridge's end (zero noise)
and keeps the likelier end, and the trace shows both runs.

Row 'lapuni-6x6' of ``bench_ica_realistic.py`` (3 Laplace + 3 uniform
sources, 6 x 6 mixing, no noise, N = 4000), SpreadICA at its defaults
(source='adaptive', noise learned 'isotropic', spread 'auto'). Prints:

1. a trace per EM map evaluation: the Amari distance of the evaluated
   mixing, its total noise tau^2 = sigma^2 + gamma^2, the E-step's mean
   spread log-likelihood (common draws within a stage), the importance
   sampler's effective sample size and each learned density's narrowest
   mixture variance;
2. the mean spread log-likelihood, with the SAME spread copies and 1024
   importance draws per row, of: the fit's start (FastICA shrunk in the
   principal subspace by the start noise), FastICA's own mixing with no
   model noise, a few small noises at FastICA's mixing, the default fit's
   end point, and the end of a fit with noise_variance=0 at the same spread.

Prints only (no results file). Usage::

    python benchmarks/diagnose_ica_noise_ridge.py            # seed 3, ~5 s
    python benchmarks/diagnose_ica_noise_ridge.py --seed 0 --max-iter 150 --tol 1e-6
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ica_realistic as bench  # noqa: E402

from skspread import SpreadICA  # noqa: E402
from skspread._testing import draw_sets as _draw_sets  # noqa: E402
from skspread._testing import ica_em_module as ica_em  # noqa: E402
from skspread._testing import initial_mixing as _initial_mixing  # noqa: E402
from skspread._testing import start_density  # noqa: E402
from skspread.metrics import amari_distance  # noqa: E402


def _traced_em_step(mixing_true):
    """``_em_step`` printing one line per evaluation of the EM map."""
    em_step = ica_em._em_step

    def traced(Y, mixing, total_variance, draw_sets, prior, batch_size):
        step = em_step(Y, mixing, total_variance, draw_sets, prior, batch_size)
        narrowest = "" if isinstance(prior, str) else np.round(prior.variances.min(axis=1), 3)
        print(
            f"  amari {amari_distance(np.linalg.pinv(mixing), mixing_true):.4f}  "
            f"tau2 {np.mean(total_variance):.4f}  loglike {step.log_likelihood:.5f}  "
            f"ess {step.effective_sample_size:6.1f}  narrowest {narrowest}"
        )
        return step

    return traced


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--tol", type=float, default=3e-3)
    args = parser.parse_args()
    X, mixing_true = bench.ROWS["lapuni-6x6"][3](args.seed)
    settings = dict(random_state=args.seed, max_iter=args.max_iter, tol=args.tol)

    print("1. EM evaluations of the default fit")
    em_step = ica_em._em_step
    ica_em._em_step = _traced_em_step(mixing_true)
    try:
        fit = SpreadICA(6, **settings).fit(X)
    finally:
        ica_em._em_step = em_step
    print(
        f"  end: amari {amari_distance(fit.components_, mixing_true):.4f}, n_iter_ "
        f"{fit.n_iter_}, noise_variance_ {fit.noise_variance_:.4f}, spread_scale_ "
        f"{fit.spread_scale_:.4f}"
    )

    print("2. mean spread log-likelihood, same spread copies and draws")
    reference = SpreadICA(6, random_state=args.seed)
    reference._validate_params()
    start = reference._start(X)
    Y = reference._spread_copies(start.X_centred, start.spread, start.rng)
    draw_sets = _draw_sets(len(Y), 1024, 6, start.rng)
    spread_variance = start.spread_variance

    def loglike(name, mixing, total_variance, prior):
        value = em_step(Y, mixing, total_variance, draw_sets, prior, 256).log_likelihood
        amari = amari_distance(np.linalg.pinv(mixing), mixing_true)
        print(f"  {name:<38} amari {amari:.4f}  tau2 {total_variance:.4f}  {value:.5f}")

    prior, mixing = start_density("adaptive", Y, start.mixing)
    loglike("start (shrunk FastICA, start noise)", mixing, start.total_variance, prior)
    fastica = _initial_mixing("fastica", start.X_centred, 6, 0.0, check_random_state(args.seed))
    prior, mixing = start_density("adaptive", Y, fastica)
    for noise in (0.0, 0.005, 0.01, 0.02):
        loglike(f"FastICA, noise {noise}", mixing, spread_variance + noise, prior)
    loglike(
        "default fit's end",
        fit.mixing_.astype(float),
        fit.noise_variance_ + spread_variance,
        fit.source_density_,
    )
    noise_free = SpreadICA(6, noise_variance=0.0, spread_scale=fit.spread_scale_, **settings)
    noise_free.fit(X)
    loglike(
        "noise_variance=0 fit's end",
        noise_free.mixing_.astype(float),
        spread_variance,
        noise_free.source_density_,
    )


if __name__ == "__main__":
    main()
