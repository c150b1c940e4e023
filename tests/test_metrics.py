"""Error measures for mixing matrices (paper section 4.1, figure 4)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skspread.metrics import amari_distance, match_components, mixing_error

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
