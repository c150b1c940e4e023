"""The start of a SpreadICA fit: data checks, the 'auto' spread, the initial mixing and noise."""

import math
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

# From the FastICA start the spread adds at most this share of the weakest
# source's variance to its posterior (see _auto_spread_scale).
_REFINING_SPREAD_SHARE = 0.02
# The least spread 'auto' picks, as a share of the RMS feature standard deviation.
_SPREAD_FLOOR_SHARE = 0.001


class _FitStart(NamedTuple):
    """What a SpreadICA fit starts from, and what online EM keeps for every block.

    ``X_centred`` is the data minus ``mean``; ``noise`` is 'fixed',
    'isotropic' or 'diagonal'; ``total_variance`` tau^2 = sigma^2 + gamma^2
    starts the EM and ``least_variance`` is a learned one's floor; ``rng``
    has drawn the start and draws the spread copies and importance draws.
    """

    mean: np.ndarray
    X_centred: np.ndarray
    n_components: int
    spread: object
    spread_variance: float
    noise: str
    mixing: np.ndarray
    total_variance: object
    least_variance: float
    rng: np.random.RandomState


def _fit_start(X, n_components, spread, init, noise_variance, random_state, mixing=None):
    """The ``_FitStart`` of a fit on ``X`` (float64, checked by ``_check_identifiable``).

    ``spread`` is the resolved spread. ``mixing``, if given, replaces the
    start ``init`` gives: a mixing fitted with unit-variance sources that
    carry the noise (see ``_shrunk_to_signal``).
    """
    mean = X.mean(axis=0)
    X_centred = X - mean
    spread_variance = 0.0 if spread is None else spread.variance
    rng = check_random_state(random_state)
    mixing, total_variance, least_variance = _initial_parameters(
        init, noise_variance, X_centred, n_components, spread_variance, rng, mixing
    )
    noise = noise_variance if isinstance(noise_variance, str) else "fixed"
    return _FitStart(
        mean,
        X_centred,
        n_components,
        spread,
        spread_variance,
        noise,
        mixing,
        total_variance,
        least_variance,
        rng,
    )


def _auto_spread_scale(X, n_components, noise_variance, init):
    """The spread 'auto' picks for a start: small to refine, the paper's to travel.

    From a start that EM must move far from (PCA, random, a given array),
    the paper's rule sigma = 2.5 sqrt(mean(A A^T)), the data covariance
    standing in for A A^T + gamma^2 I, keeps EM out of the freezing of the
    deterministic limit (paper eq 43-45). It is capped so that
    tau^2 = sigma^2 + gamma^2 <= lambda_K(A^T A) (the K-th eigenvalue of
    the data covariance minus gamma^2 standing in), which keeps the
    proposal's likelihood factor V = tau^2 (A^T A)^-1 no wider than the
    unit-variance source prior. From FastICA's consistent start EM only
    refines, and the spread costs statistical efficiency that grows with
    sigma: there sigma^2 = 0.02 (lambda_K - gamma^2), at most 2% of the
    weakest source's variance added to its posterior.
    """
    covariance = np.atleast_2d(np.cov(X, rowvar=False))
    smallest_signal = np.linalg.eigvalsh(covariance)[-n_components] - noise_variance
    # Where the rules give no spread (the mean covariance entry cancels, or
    # the noise hides the weakest source), a small share of the data's own
    # scale keeps EM moving: a floor in the data's units, not absolute ones.
    floor = _SPREAD_FLOOR_SHARE * math.sqrt(float(np.mean(np.diag(covariance))))
    if isinstance(init, str) and init == "fastica":
        return max(floor, math.sqrt(max(_REFINING_SPREAD_SHARE * smallest_signal, 0.0)))
    paper_rule = 2.5 * math.sqrt(max(float(np.mean(covariance)), 0.0))
    proposal_cap = math.sqrt(max(smallest_signal - noise_variance, 0.0))
    return max(floor, min(paper_rule, proposal_cap))


def _spread_copies(X_centred, spread, n_copies, rng):
    """``n_copies`` spread copies of each row, a row's copies consecutive (the rows without spread)."""
    if spread is None:
        return X_centred
    Y = np.repeat(X_centred, n_copies, axis=0)
    Y += spread.noise(Y.shape, rng)
    return Y


def _units_span(X_centred):
    """Largest over smallest standard deviation of the non-constant features (1.0 below two)."""
    scales = np.std(X_centred, axis=0)[np.ptp(X_centred, axis=0) > 0]
    return float(scales.max() / scales.min()) if len(scales) > 1 else 1.0


def _check_identifiable(X_centred, n_components):
    """Refuse data with fewer than ``n_components`` independent directions, before EM."""
    n_samples, _ = X_centred.shape
    constant = np.flatnonzero(np.ptp(X_centred, axis=0) == 0)
    if len(constant):
        raise ValueError(
            f"X has constant columns {constant.tolist()}: no mixture of sources "
            "with Gaussian noise produces them. Drop these columns before fitting."
        )
    if n_samples <= n_components:
        raise ValueError(
            f"X has n_samples={n_samples} rows, but n_components={n_components} "
            "sources need more rows than sources. Reduce n_components or add rows."
        )
    rank = int(np.linalg.matrix_rank(X_centred))
    if rank < n_components:
        span = _units_span(X_centred)
        # Columns in units far apart leave the small ones below float64's
        # resolution of the rank next to the large ones.
        units = (
            f" The columns' standard deviations span a factor {span:.0e}: if "
            "they are in different units, standardise them first (StandardScaler)."
            if span > 1e4
            else ""
        )
        raise ValueError(
            f"The centred X has rank {rank} < n_components={n_components}: the "
            "data span too few directions to separate that many sources. Reduce "
            f"n_components to at most {rank}.{units}"
        )


def _is_identifiable(X_centred, n_components):
    """Whether ``_check_identifiable`` accepts the data (a block can then have its own start)."""
    try:
        _check_identifiable(X_centred, n_components)
    except ValueError:
        return False
    return True


def _initial_mixing(init, X_centred, n_components, noise_variance, random_state):
    """Starting mixing matrix (D, K), scaled for unit-variance sources."""
    n_samples, n_features = X_centred.shape
    if not isinstance(init, str):
        mixing = np.asarray(init, dtype=float)
        if mixing.shape != (n_features, n_components):
            raise ValueError(
                f"init as an array must have shape (n_features, n_components) = "
                f"({n_features}, {n_components}); got {mixing.shape}."
            )
        if not np.all(np.isfinite(mixing)):
            raise ValueError("init contains NaN or infinity.")
        return mixing.copy()
    if init == "fastica":
        ica = FastICA(
            n_components=n_components,
            whiten="unit-variance",
            max_iter=1000,
            random_state=random_state,
        )
        # A start need not be converged: the EM refines it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ica.fit(X_centred)
        return _shrunk_to_signal(ica.mixing_, X_centred, n_components, noise_variance)
    basis, _, signal = _principal_signal(X_centred, n_components, noise_variance)
    if init == "pca":
        return basis * np.sqrt(signal)
    # 'random': a random orientation with the PCA scale, so that the spread
    # proposal is neither degenerate nor far too wide.
    rotation = random_state.standard_normal((n_features, n_components))
    rotation /= np.linalg.norm(rotation, axis=0)
    return rotation * np.sqrt(signal)


def _principal_axes(X_centred):
    """The eigenvalues of the data covariance, largest first, and their eigenvectors (columns)."""
    eigenvalues, eigenvectors = np.linalg.eigh(X_centred.T @ X_centred / len(X_centred))
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order], eigenvectors[:, order]


def _principal_signal(X_centred, n_components, noise_variance):
    """The principal directions (D, K), their variances, and their signal's (minus gamma^2)."""
    eigenvalues, eigenvectors = _principal_axes(X_centred)
    variances = eigenvalues[:n_components]
    signal = np.maximum(variances - noise_variance, 1e-6 * eigenvalues[0])
    return eigenvectors[:, :n_components], variances, signal


def _shrunk_to_signal(mixing, X_centred, n_components, noise_variance):
    """A start ``mixing`` of unit-variance sources that carry the noise, made the signal's.

    Such sources (FastICA's, the noise-free fit's) carry the noise: A A^T
    has the principal eigenvalues signal + gamma^2. They are shrunk to the
    signal's.
    """
    basis, variances, signal = _principal_signal(X_centred, n_components, noise_variance)
    shrink = np.sqrt(signal / variances) - 1.0
    return mixing + basis @ (shrink[:, None] * (basis.T @ mixing))


def _start_noise_variance(noise_variance, X, n_components):
    """gamma^2 for the start and for 'auto': the given one, or a PCA estimate if learned."""
    if isinstance(noise_variance, str):
        return _pca_noise_variance(X, n_components)
    return float(noise_variance)


def _initial_parameters(
    init, noise_variance, X_centred, n_components, spread_variance, rng, mixing=None
):
    """The start's mixing matrix, total noise variance tau^2 and its floor (learned noise)."""
    start_noise = _start_noise_variance(noise_variance, X_centred, n_components)
    if mixing is None:
        mixing = _initial_mixing(init, X_centred, n_components, start_noise, rng)
    else:
        mixing = _shrunk_to_signal(mixing, X_centred, n_components, start_noise)
    if not isinstance(noise_variance, str):
        return mixing, noise_variance + spread_variance, 0.0
    total_variance, least_variance = _learned_noise_start(
        X_centred, mixing, noise_variance, spread_variance
    )
    return mixing, total_variance, least_variance


def _pca_noise_variance(X, n_components):
    """A start for a learned gamma^2 from the eigenvalues of the data covariance.

    With fewer sources than features, the mean variance outside the
    principal n_components directions, consistent for isotropic noise. A
    square model leaves no such direction and any gamma^2 up to the smallest
    eigenvalue fits the covariance: half of it starts EM inside that range
    (from 0 the learned noise of noisy square mixtures stayed near 0, where
    EM barely moves it).
    """
    eigenvalues = np.linalg.eigvalsh(np.atleast_2d(np.cov(X, rowvar=False)))
    if n_components == X.shape[1]:
        return 0.5 * float(eigenvalues[0])
    return float(np.mean(eigenvalues[:-n_components]))


def _learned_noise_start(X_centred, mixing, noise, spread_variance):
    """Start and floor of a learned total noise variance tau^2 = sigma^2 + gamma^2.

    The start is the spread's variance plus the residual variance of the
    start mixing, per feature ('diagonal') or its mean ('isotropic'). The
    floor is the spread's variance (gamma^2 >= 0), or without spread a small
    share of the data's variance, which keeps the EM map defined.
    """
    variances = np.var(X_centred, axis=0)
    residual = np.maximum(variances - np.sum(mixing**2, axis=1), 0.0)
    least_variance = spread_variance or _SPREAD_FLOOR_SHARE**2 * float(np.mean(variances))
    if noise == "isotropic":
        residual = float(np.mean(residual))
    return np.maximum(residual + spread_variance, least_variance), least_variance
