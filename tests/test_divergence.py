"""Closed forms of the spread KL divergence (paper section 2, eq 13-27, 35-36)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from skspread.divergence import gaussian_kl, spread_kl
from skspread.spread import BaseSpread, GaussianSpread, LaplaceSpread

# Quadrature is asked for 1e-10; the closed forms must agree to the 1e-6.
QUAD_TOL = 1e-10
AGREEMENT = 1e-6
# The closed forms are cheap; 50 examples per property keep the file to seconds.
PROPERTY_SETTINGS = settings(deadline=None, max_examples=50)


def _kl_by_quad(log_p, log_q, lower, upper, points=None):
    def integrand(y):
        lp = log_p(y)
        return math.exp(lp) * (lp - log_q(y))

    value, error = integrate.quad(
        integrand, lower, upper, points=points, epsabs=QUAD_TOL, epsrel=QUAD_TOL, limit=200
    )
    assert error < AGREEMENT / 10
    return value


def _kl_by_dblquad(log_p, log_q, box, breaks=((), ())):
    """2-D KL integral over ``box``, split at the kinks ``breaks`` of the integrand.

    The log-densities take the two coordinates as floats (the integrand is
    called about 10^5 times, so it stays in plain Python).
    """
    (x_low, x_high), (y_low, y_high) = box
    x_edges = np.unique([x_low, *breaks[0], x_high])
    y_edges = np.unique([y_low, *breaks[1], y_high])

    def integrand(y2, y1):
        lp = log_p(y1, y2)
        return math.exp(lp) * (lp - log_q(y1, y2))

    total = 0.0
    for x0, x1 in zip(x_edges[:-1], x_edges[1:]):
        for y0, y1 in zip(y_edges[:-1], y_edges[1:]):
            value, _ = integrate.dblquad(
                integrand, x0, x1, y0, y1, epsabs=QUAD_TOL, epsrel=QUAD_TOL
            )
            total += value
    return total


def _laplace_log_density(centre, scale):
    """Log-density of independent Laplace coordinates, of one float or two."""
    centre = [float(c) for c in np.atleast_1d(centre)]
    log_norm = len(centre) * math.log(2 * scale)
    return lambda *y: -sum(abs(yi - ci) for yi, ci in zip(y, centre)) / scale - log_norm


def _gaussian_log_density_2d(mean, cov):
    """Log-density of N(mean, cov) in 2-D, written out in plain floats."""
    (m1, m2), ((c11, c12), (_, c22)) = np.asarray(mean, float), np.asarray(cov, float)
    det = c11 * c22 - c12 * c12
    log_norm = math.log(2 * math.pi) + 0.5 * math.log(det)

    def log_density(y1, y2):
        d1, d2 = y1 - m1, y2 - m2
        return -0.5 * (c22 * d1 * d1 - 2 * c12 * d1 * d2 + c11 * d2 * d2) / det - log_norm

    return log_density


# --- closed forms against numerical integration (1-D) -------------------------------


@pytest.mark.parametrize("mu_p, mu_q, sigma", [(0.0, 1.0, math.sqrt(0.5)), (-0.3, 2.2, 1.7)])
def test_delta_gaussian_spread_matches_1d_quadrature(mu_p, mu_q, sigma):
    p_tilde, q_tilde = stats.norm(mu_p, sigma), stats.norm(mu_q, sigma)
    numeric = _kl_by_quad(p_tilde.logpdf, q_tilde.logpdf, mu_p - 40 * sigma, mu_p + 40 * sigma)
    assert spread_kl([mu_p], [mu_q], GaussianSpread(sigma)) == pytest.approx(
        numeric, abs=AGREEMENT
    )


@pytest.mark.parametrize("mu_p, mu_q, b", [(0.0, 1.0, 1.0), (0.4, -1.3, 0.35), (0.0, 1e-3, 2.0)])
def test_delta_laplace_spread_matches_1d_quadrature(mu_p, mu_q, b):
    lo, hi = min(mu_p, mu_q) - 40 * b, max(mu_p, mu_q) + 40 * b
    numeric = _kl_by_quad(
        _laplace_log_density(mu_p, b),
        _laplace_log_density(mu_q, b),
        lo,
        hi,
        points=[mu_p, mu_q],
    )
    assert spread_kl(mu_p, mu_q, LaplaceSpread(b)) == pytest.approx(numeric, abs=AGREEMENT)


@pytest.mark.parametrize(
    "a, var_p, b, var_q, sigma", [(0.0, 1.0, 0.5, 2.0, 0.7), (1.0, 0.0, -1.0, 3.0, 1.2)]
)
def test_gaussians_gaussian_spread_matches_1d_quadrature(a, var_p, b, var_q, sigma):
    sd_p, sd_q = math.sqrt(var_p + sigma**2), math.sqrt(var_q + sigma**2)
    numeric = _kl_by_quad(
        stats.norm(a, sd_p).logpdf, stats.norm(b, sd_q).logpdf, a - 40 * sd_p, a + 40 * sd_p
    )
    closed = spread_kl([a], [b], GaussianSpread(sigma), cov_p=var_p, cov_q=var_q)
    assert closed == pytest.approx(numeric, abs=AGREEMENT)


# --- closed forms against numerical integration (2-D) -------------------------------


def test_delta_gaussian_spread_matches_2d_quadrature_eq27():
    mu_p, mu_q = np.array([0.0, 0.0]), np.array([1.0, -0.5])
    sigma = math.sqrt(0.5)
    box = [(-8.0, 8.0), (-8.0, 8.0)]
    numeric = _kl_by_dblquad(
        _gaussian_log_density_2d(mu_p, 0.5 * np.eye(2)),
        _gaussian_log_density_2d(mu_q, 0.5 * np.eye(2)),
        box,
    )
    closed = spread_kl(mu_p, mu_q, GaussianSpread(sigma))
    assert closed == pytest.approx(numeric, abs=AGREEMENT)
    assert closed == pytest.approx(np.sum((mu_p - mu_q) ** 2), rel=1e-12)


def test_delta_laplace_spread_matches_2d_quadrature():
    mu_p, mu_q, b = np.array([0.0, 0.3]), np.array([0.8, -0.4]), 0.5
    box = [(-16.0, 16.0), (-16.0, 16.0)]
    breaks = ((mu_p[0], mu_q[0]), (mu_p[1], mu_q[1]))
    numeric = _kl_by_dblquad(
        _laplace_log_density(mu_p, b), _laplace_log_density(mu_q, b), box, breaks
    )
    assert spread_kl(mu_p, mu_q, LaplaceSpread(b)) == pytest.approx(numeric, abs=AGREEMENT)


def test_gaussians_full_spread_covariance_matches_2d_quadrature():
    a, b = np.array([0.2, -0.1]), np.array([-0.5, 0.6])
    cov_p = np.array([[1.0, 0.6], [0.6, 0.8]])
    cov_q = np.array([[0.5, -0.2], [-0.2, 1.1]])
    spread_cov = np.array([[0.3, 0.1], [0.1, 0.4]])
    box = [(-10.0, 10.0), (-10.0, 10.0)]
    numeric = _kl_by_dblquad(
        _gaussian_log_density_2d(a, cov_p + spread_cov),
        _gaussian_log_density_2d(b, cov_q + spread_cov),
        box,
    )
    assert spread_kl(a, b, spread_cov, cov_p=cov_p, cov_q=cov_q) == pytest.approx(
        numeric, abs=AGREEMENT
    )


def test_parallel_lines_eq35_36_match_2d_quadrature():
    # Two implicit models on parallel lines x = a + A z, x = b + A z: no density in R^2.
    A = np.array([[1.0], [0.5]])
    a, b = np.array([0.0, 0.0]), np.array([0.3, -0.6])
    sigma = 0.4
    spread_cov = sigma**2 * np.eye(2) + A @ A.T
    box = [(-10.0, 10.0), (-10.0, 10.0)]
    numeric = _kl_by_dblquad(
        _gaussian_log_density_2d(a, spread_cov), _gaussian_log_density_2d(b, spread_cov), box
    )
    closed = spread_kl(a, b, GaussianSpread(sigma), cov_p=A @ A.T, cov_q=A @ A.T)
    assert closed == pytest.approx(numeric, abs=AGREEMENT)


# --- properties (hypothesis) ---------------------------------------------------------

coordinate = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
scale = st.floats(0.05, 20.0)
dimension = st.integers(1, 4)


def vectors(n):
    return arrays(float, n, elements=coordinate)


@st.composite
def covariances(draw, n, minimum_eigenvalue=0.1):
    factor = draw(arrays(float, (n, n), elements=st.floats(-2.0, 2.0)))
    return factor @ factor.T + minimum_eigenvalue * np.eye(n)


@st.composite
def gaussian_pairs(draw):
    n = draw(dimension)
    return (
        draw(vectors(n)),
        draw(covariances(n)),
        draw(vectors(n)),
        draw(covariances(n)),
    )


spreads = st.one_of(st.builds(GaussianSpread, scale), st.builds(LaplaceSpread, scale))


@PROPERTY_SETTINGS
@given(data=st.data(), spread=spreads)
def test_delta_spread_kl_nonnegative_symmetric_and_zero_iff_equal(data, spread):
    n = data.draw(dimension)
    mu_p = data.draw(vectors(n))
    offset = data.draw(
        arrays(float, n, elements=st.floats(-5.0, 5.0)).filter(
            lambda v: np.max(np.abs(v)) >= 1e-3
        )
    )
    mu_q = mu_p + offset
    forward, backward = spread_kl(mu_p, mu_q, spread), spread_kl(mu_q, mu_p, spread)
    assert forward > 0
    assert forward == backward
    assert spread_kl(mu_p, mu_p, spread) == 0.0


@PROPERTY_SETTINGS
@given(mu_p=vectors(3), mu_q=vectors(3))
def test_eq27_gaussian_spread_half_variance_is_squared_distance(mu_p, mu_q):
    squared_distance = float(np.sum((mu_p - mu_q) ** 2))
    assert spread_kl(mu_p, mu_q, GaussianSpread(math.sqrt(0.5))) == pytest.approx(
        squared_distance, rel=1e-12, abs=1e-300
    )
    assert spread_kl(mu_p, mu_q, 0.5) == pytest.approx(squared_distance, rel=1e-9, abs=1e-9)


@PROPERTY_SETTINGS
@given(pair=gaussian_pairs(), sigma=scale)
def test_gaussian_spread_kl_nonnegative_and_zero_for_equal(pair, sigma):
    a, cov_p, b, cov_q = pair
    spread = GaussianSpread(sigma)
    assert spread_kl(a, b, spread, cov_p=cov_p, cov_q=cov_q) >= 0.0
    assert spread_kl(a, a, spread, cov_p=cov_p, cov_q=cov_p) == pytest.approx(0.0, abs=1e-12)


@PROPERTY_SETTINGS
@given(pair=gaussian_pairs(), sigma=scale)
def test_gaussian_spread_kl_positive_for_different_covariances(pair, sigma):
    a, cov_p, _, _ = pair
    # cov_p is positive definite, so 1.5 cov_p + Sigma differs from cov_p + Sigma.
    wider = 1.5 * cov_p
    assert spread_kl(a, a, GaussianSpread(sigma), cov_p=cov_p, cov_q=wider) > 0.0


@PROPERTY_SETTINGS
@given(data=st.data(), sigma=scale)
def test_gaussian_spread_kl_symmetric_for_equal_covariances(data, sigma):
    n = data.draw(dimension)
    a, b, cov = data.draw(vectors(n)), data.draw(vectors(n)), data.draw(covariances(n))
    forward = spread_kl(a, b, GaussianSpread(sigma), cov_p=cov, cov_q=cov)
    backward = spread_kl(b, a, GaussianSpread(sigma), cov_p=cov, cov_q=cov)
    assert forward == pytest.approx(backward, rel=1e-9, abs=1e-12)


def test_gaussian_spread_kl_not_symmetric_for_different_covariances():
    # N(0, 1 + 1) vs N(0, 3 + 1): (1/2 - 1 + log 2) / 2 vs (2 - 1 - log 2) / 2.
    forward = spread_kl([0.0], [0.0], GaussianSpread(1.0), cov_p=1.0, cov_q=3.0)
    backward = spread_kl([0.0], [0.0], GaussianSpread(1.0), cov_p=3.0, cov_q=1.0)
    assert forward == pytest.approx(0.5 * (0.5 - 1.0 + math.log(2.0)), rel=1e-12)
    assert backward == pytest.approx(0.5 * (2.0 - 1.0 - math.log(2.0)), rel=1e-12)


@PROPERTY_SETTINGS
@given(pair=gaussian_pairs(), data=st.data())
def test_spreading_never_increases_gaussian_kl(pair, data):
    """Data processing: KL(k * p || k * q) <= KL(p || q), isotropic and full Sigma."""
    a, cov_p, b, cov_q = pair
    unspread = gaussian_kl(a, cov_p, b, cov_q)
    spread_cov = data.draw(covariances(len(a), minimum_eigenvalue=0.01))
    rounding = 1e-10 * (1.0 + unspread)
    assert spread_kl(a, b, GaussianSpread(data.draw(scale)), cov_p=cov_p, cov_q=cov_q) <= (
        unspread + rounding
    )
    assert spread_kl(a, b, spread_cov, cov_p=cov_p, cov_q=cov_q) <= unspread + rounding


@PROPERTY_SETTINGS
@given(pair=gaussian_pairs(), small=scale, extra=scale)
def test_more_spread_never_increases_the_spread_kl(pair, small, extra):
    # N(0, s^2 + t^2) = N(0, s^2) * N(0, t^2): a wider spread is a further spread.
    a, cov_p, b, cov_q = pair
    narrow = spread_kl(a, b, GaussianSpread(small), cov_p=cov_p, cov_q=cov_q)
    wide = spread_kl(a, b, GaussianSpread(math.hypot(small, extra)), cov_p=cov_p, cov_q=cov_q)
    assert wide <= narrow + 1e-10 * (1.0 + narrow)


# --- consistency between the entry points ---------------------------------------------


@PROPERTY_SETTINGS
@given(mu_p=vectors(3), mu_q=vectors(3), sigma=scale)
def test_delta_is_a_zero_covariance_gaussian(mu_p, mu_q, sigma):
    direct = spread_kl(mu_p, mu_q, GaussianSpread(sigma))
    as_gaussians = spread_kl(mu_p, mu_q, GaussianSpread(sigma), cov_p=0.0, cov_q=0.0)
    as_matrix = spread_kl(mu_p, mu_q, sigma**2 * np.eye(3))
    assert as_gaussians == pytest.approx(direct, rel=1e-9, abs=1e-12)
    assert as_matrix == pytest.approx(direct, rel=1e-9, abs=1e-12)


def test_gaussian_kl_textbook_values():
    assert gaussian_kl([0.0], 1.0, [1.0], 1.0) == pytest.approx(0.5, rel=1e-15)
    # KL(N(0, 2 I_2) || N(0, I_2)) = (4 - 2 - 2 log 2) / 2.
    assert gaussian_kl([0.0, 0.0], 2.0, [0.0, 0.0], 1.0) == pytest.approx(
        1.0 - math.log(2.0), rel=1e-14
    )


@PROPERTY_SETTINGS
@given(pair=gaussian_pairs())
def test_gaussian_kl_matches_trace_log_det_formula(pair):
    a, cov_p, b, cov_q = pair
    precision_q = np.linalg.inv(cov_q)
    d = a - b
    textbook = 0.5 * (
        np.trace(precision_q @ cov_p)
        + d @ precision_q @ d
        - len(a)
        + np.linalg.slogdet(cov_q)[1]
        - np.linalg.slogdet(cov_p)[1]
    )
    assert gaussian_kl(a, cov_p, b, cov_q) == pytest.approx(textbook, rel=1e-8, abs=1e-9)


@pytest.mark.parametrize("x", [1e-6, 1e-3, 0.1])
def test_laplace_delta_kl_accurate_for_small_distances(x):
    # Alternating Taylor series of x + exp(-x) - 1: the remainder is below x^5 / 120;
    # 1e-9 allows for rounding, which a naive x + exp(-x) - 1 exceeds at x = 1e-6.
    series = x**2 / 2 - x**3 / 6 + x**4 / 24
    assert spread_kl([0.0], [x], LaplaceSpread(1.0)) == pytest.approx(
        series, rel=1e-9, abs=x**5 / 120
    )


# --- input validation ---------------------------------------------------------------


class _CustomSpread(BaseSpread):
    """A valid kind of spread object for which no closed form is offered."""

    name = "custom"
    variance = 1.0

    def noise(self, shape, random_state=None):
        raise NotImplementedError

    def _log_density(self, E):
        raise NotImplementedError

    def _expected_log_density(self, D):
        raise NotImplementedError

    def characteristic_function(self, w):
        raise NotImplementedError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mean_p=[0.0, 1.0], mean_q=[0.0], spread=GaussianSpread(1.0)), "same shape"),
        (dict(mean_p=[[0.0]], mean_q=[[0.0]], spread=GaussianSpread(1.0)), "vector"),
        (dict(mean_p=[np.nan], mean_q=[0.0], spread=GaussianSpread(1.0)), "finite"),
        (dict(mean_p=[0.0], mean_q=[1.0], spread=None), "GaussianSpread or LaplaceSpread"),
        (dict(mean_p=[0.0], mean_q=[1.0], spread="gaussian"), "with its scale"),
        (dict(mean_p=[0.0], mean_q=[1.0], spread=_CustomSpread(1.0)), "GaussianSpread"),
        (dict(mean_p=[0.0], mean_q=[1.0], spread=0.0), "positive definite"),
        (dict(mean_p=[0.0, 0.0], mean_q=[1.0, 0.0], spread=[[1.0, 2.0], [2.0, 1.0]]),
         "positive definite"),
        (dict(mean_p=[0.0, 0.0], mean_q=[1.0, 0.0], spread=np.eye(3)), "shape"),
        (dict(mean_p=[0.0], mean_q=[1.0], spread=LaplaceSpread(1.0), cov_p=1.0),
         "no closed form"),
        (dict(mean_p=[0.0, 0.0], mean_q=[1.0, 0.0], spread=GaussianSpread(1.0),
              cov_p=[[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (dict(mean_p=[0.0, 0.0], mean_q=[1.0, 0.0], spread=GaussianSpread(1.0),
              cov_q=[[1.0, 0.0], [0.0, -1.0]]), "semi-definite"),
        (dict(mean_p=[0.0], mean_q=[1.0], spread=GaussianSpread(1.0), cov_p=np.inf),
         "finite"),
    ],
)
def test_spread_kl_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spread_kl(**kwargs)


@pytest.mark.parametrize(
    "cov_p, cov_q, message",
    [
        (0.0, 1.0, "positive definite"),
        ([[1.0, 1.0], [1.0, 1.0]], 1.0, "positive definite"),
        (1.0, [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], "shape"),
    ],
)
def test_gaussian_kl_refuses_degenerate_or_misshapen_covariances(cov_p, cov_q, message):
    with pytest.raises(ValueError, match=message):
        gaussian_kl([0.0, 0.0], cov_p, [0.0, 1.0], cov_q)
