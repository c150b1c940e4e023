"""Error measures for mixing matrices (paper section 4.1, figure 4) and the Frechet distance."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skspread.metrics import amari_distance, frechet_distance, match_components, mixing_error

PROPERTY_SETTINGS = settings(deadline=None, max_examples=50)


@st.composite
def mixing_problems(draw, min_components=1):
    """A well-conditioned mixing matrix A (D x K), a permutation and signed scalings."""
    n_components = draw(st.integers(min_components, 5))
    n_features = draw(st.integers(n_components, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Orthonormal columns times singular values in [1, 3]: condition number <= 3.
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, n_components)))
    rotation, _ = np.linalg.qr(rng.normal(size=(n_components, n_components)))
    A = basis @ np.diag(rng.uniform(1.0, 3.0, n_components)) @ rotation
    permutation = np.array(draw(st.permutations(range(n_components))))
    magnitudes = draw(
        st.lists(st.floats(0.1, 10.0), min_size=n_components, max_size=n_components)
    )
    signs = draw(
        st.lists(st.sampled_from([-1.0, 1.0]), min_size=n_components, max_size=n_components)
    )
    return A, permutation, np.array(magnitudes) * np.array(signs)


def _scaled_permutation(permutation, scalings):
    k = len(permutation)
    return np.eye(k)[permutation] * scalings[:, None]


# --- Amari distance -------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(problem=mixing_problems())
def test_amari_distance_zero_for_scaled_permuted_inverse(problem):
    """W = P D A^+ gives W A = P D, a scaled permutation: distance 0 up to rounding.

    The off-pattern entries of W A are rounding errors of order eps cond(A) max|D|,
    divided by entries at least min|D|: with cond(A) <= 3 and |D| in [0.1, 10] each
    ratio is below 1e-12, and at most K^2 of them are summed.
    """
    A, permutation, scalings = problem
    W = _scaled_permutation(permutation, scalings) @ np.linalg.pinv(A)
    assert 0.0 <= amari_distance(W, A) <= 1e-10


@PROPERTY_SETTINGS
@given(problem=mixing_problems(min_components=2), data=st.data())
def test_amari_distance_positive_when_not_a_scaled_permutation(problem, data):
    A, permutation, scalings = problem
    k = len(permutation)
    product = _scaled_permutation(permutation, scalings)
    row = data.draw(st.integers(0, k - 1))
    off_pattern = [j for j in range(k) if j != permutation[row]]
    column = data.draw(st.sampled_from(off_pattern))
    product[row, column] = data.draw(st.floats(0.01, 10.0)) * np.max(np.abs(scalings))
    W = product @ np.linalg.pinv(A)
    assert amari_distance(W, A) > 1e-6


def test_amari_distance_reaches_its_maximum_k_minus_one():
    # W A = all ones: every row and column sum of ratios is K, so the distance is K - 1.
    k = 4
    A = np.diag([1.0, 2.0, 3.0, 4.0])
    assert amari_distance(np.ones((k, k)) @ np.linalg.inv(A), A) == pytest.approx(k - 1)


def test_amari_distance_hand_computed():
    # W A = [[1, 0.5], [0, 2]]: rows 0.5 and 0, columns 0 and 0.25, over 2K = 4.
    W = np.array([[1.0, 0.5], [0.0, 2.0]])
    assert amari_distance(W, np.eye(2)) == pytest.approx(0.75 / 4)


def test_amari_distance_refuses_non_square_product():
    with pytest.raises(ValueError, match="must be square"):
        amari_distance(np.ones((2, 3)), np.ones((3, 3)))


@pytest.mark.parametrize(
    "W, message",
    [
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "zero row or column"),
        (np.array([[1.0, 0.0], [1.0, 0.0]]), "zero row or column"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "finite"),
    ],
)
def test_amari_distance_refuses_an_undefined_ratio(W, message):
    # A zero row or column used to give NaN with a RuntimeWarning.
    with pytest.raises(ValueError, match=message):
        amari_distance(W, np.eye(2))


# --- matching and the relative error of figure 4 ----------------------------------------


@PROPERTY_SETTINGS
@given(problem=mixing_problems())
def test_match_components_undoes_permutation_and_sign(problem):
    A, permutation, scalings = problem
    A_est = A[:, permutation] * np.sign(scalings)
    assert np.array_equal(match_components(A_est, A), A)


@PROPERTY_SETTINGS
@given(problem=mixing_problems(), noise_seed=st.integers(0, 2**32 - 1))
def test_mixing_error_invariant_to_column_permutation_and_sign(problem, noise_seed):
    A, permutation, scalings = problem
    A_est = A + 0.1 * np.random.default_rng(noise_seed).normal(size=A.shape)
    reference = mixing_error(A_est, A)
    flipped = A_est[:, permutation] * np.sign(scalings)
    assert mixing_error(flipped, A) == reference


def test_mixing_error_figure4_measure_by_hand():
    A = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    A_est = A + np.array([[0.1, 0.0], [0.0, -0.2], [0.3, 0.0]])
    expected = (0.1 + 0.2 + 0.3) / 6
    assert mixing_error(A_est, A) == pytest.approx(expected)
    assert mixing_error(-A_est[:, ::-1], A) == pytest.approx(expected)
    assert mixing_error(A, A) == 0.0


def test_mixing_error_refuses_zero_entries_and_mismatched_shapes():
    with pytest.raises(ValueError, match="zero entries"):
        mixing_error(np.ones((2, 2)), np.eye(2))
    with pytest.raises(ValueError, match="same shape"):
        mixing_error(np.ones((3, 2)), np.ones((2, 2)))


# --- Frechet distance -------------------------------------------------------------------


def _frechet_by_sqrtm(X, Y):
    """The textbook formula with scipy's general matrix square root of C_X C_Y."""
    from scipy import linalg

    cov_x, cov_y = np.cov(X, rowvar=False), np.cov(Y, rowvar=False)
    difference = X.mean(axis=0) - Y.mean(axis=0)
    cross = linalg.sqrtm(cov_x @ cov_y).real
    return difference @ difference + np.trace(cov_x + cov_y - 2 * cross)


def test_frechet_distance_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    Y = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + 1.0
    assert frechet_distance(X, Y) == pytest.approx(_frechet_by_sqrtm(X, Y), rel=1e-9)


def test_frechet_distance_of_two_gaussians_in_closed_form():
    """N(0, I) against N(m, 4 I) in D dimensions: ||m||^2 + D (2 - 1)^2.

    To first order in the sampling errors, the mean term moves by
    2 m.(delta_y - delta_x) with Var delta = (1 + 4) / n per coordinate, and
    each coordinate's (sigma_y - sigma_x)^2 by 2 (sigma_y - sigma_x) times an
    error of variance (4 + 1) / (2 n); the bias is O(D / n).
    """
    n, dimension = 20_000, 3
    rng = np.random.default_rng(1)
    m = np.array([1.0, -2.0, 0.5])
    X = rng.normal(size=(n, dimension))
    Y = m + 2.0 * rng.normal(size=(n, dimension))
    expected = m @ m + dimension
    standard_error = np.sqrt(4 * (m @ m) * 5 / n + dimension * 4 * 2.5 / n)
    tolerance = 4 * standard_error + 10 * dimension / n
    assert abs(frechet_distance(X, Y) - expected) < tolerance


def test_frechet_distance_exact_for_singular_covariances():
    # A constant column (a pixel that never varies) adds only its squared shift.
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(400, 3)), 1.5 * rng.normal(size=(300, 3))
    padded_x = np.hstack([X, np.full((400, 2), 0.25)])
    padded_y = np.hstack([Y, np.full((300, 2), -0.75)])
    assert frechet_distance(padded_x, padded_y) == pytest.approx(
        frechet_distance(X, Y) + 2 * 1.0**2, rel=1e-12
    )
    # Rank-one data on a line: the covariances have rank 1 in 3-D.
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    line_x = rng.normal(size=(500, 1)) * direction
    assert frechet_distance(line_x, 3.0 * line_x) == pytest.approx(
        (3.0 - 1.0) ** 2 * np.var(line_x @ direction, ddof=1)
        + np.sum((2 * line_x.mean(axis=0)) ** 2),
        rel=1e-9,
    )
    assert frechet_distance(line_x, line_x) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("c", [1e-150, 1e-6, 1e6, 1e150])
def test_frechet_distance_scales_with_the_square_of_the_units(c):
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(200, 3)), rng.normal(size=(100, 3)) + 0.5
    assert frechet_distance(c * X, c * Y) == pytest.approx(
        c**2 * frechet_distance(X, Y), rel=1e-12
    )


def test_frechet_distance_in_a_feature_space():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) + 0.3
    pca = PCA(n_components=2).fit(X)
    in_features = frechet_distance(pca.transform(X), pca.transform(Y))
    assert frechet_distance(X, Y, features=pca) == in_features
    assert frechet_distance(X, Y, features=pca.transform) == in_features
    # Images (n, 4, 4) flattened by the feature map.
    images_x, images_y = X[:, :4].reshape(-1, 2, 2), Y[:, :4].reshape(-1, 2, 2)
    flatten = lambda images: images.reshape(len(images), -1)  # noqa: E731
    assert frechet_distance(images_x, images_y, features=flatten) == frechet_distance(
        X[:, :4], Y[:, :4]
    )


@pytest.mark.parametrize(
    "X, Y, kwargs, error, message",
    [
        (np.ones((5, 2)), np.ones((5, 3)), {}, ValueError, "same number of features"),
        (np.ones((1, 2)), np.ones((5, 2)), {}, ValueError, "X has 1 sample"),
        (np.ones((5, 2)), np.ones((5, 2, 1)), {}, ValueError, "Y must be a matrix"),
        (np.ones((5, 2)), np.ones((5, 2)), {"features": "pca"}, TypeError, "features must"),
        (np.ones((5, 2)), np.ones((5, 2)), {"features": lambda A: A[:2]}, ValueError,
         "one row of features"),
        (np.ones((5, 2)), np.ones((5, 2)), {"features": lambda A: A[:, 0]}, ValueError,
         r"features\(X\) must be a matrix"),
        (np.ones((5, 2)), np.full((5, 2), np.nan), {}, ValueError, "Y must be finite"),
    ],
)
def test_frechet_distance_refuses_bad_input(X, Y, kwargs, error, message):
    with pytest.raises(error, match=message):
        frechet_distance(X, Y, **kwargs)
