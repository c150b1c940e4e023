"""``python -m skspread``: the command a new user runs first (issue 6)."""

import importlib.util
import math
import os
import re
import subprocess
import sys

import pytest

from skspread._testing import LINE_NOISE_VARIANCE, LINE_NORM, QUICK
from skspread._testing import showcase_main as main

HAS_TORCH = importlib.util.find_spec("torch") is not None
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(*arguments, cwd):
    environment = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "skspread", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _table_rows(stdout):
    """The rows of the printed table, keyed by (part, method)."""
    rows = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5 and cells[0] in {"line", "ica", "digits"}:
            rows[cells[0], cells[1]] = (cells[2], float(cells[3]), float(cells[4]))
    return rows


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("showcase")
    result = _run("--quick", "--output", "figures", cwd=folder)
    return result, folder / "figures"


def _main_exits(argv, capsys):
    """What the entry point prints for options that exit before the showcase runs."""
    with pytest.raises(SystemExit) as exit_status:
        main(argv)
    assert exit_status.value.code == 0
    return capsys.readouterr().out


def test_help_explains_the_options(capsys):
    out = _main_exits(["--help"], capsys)
    for option in ("--version", "--output", "--quick", "--seed", "--no-deep", "--device"):
        assert option in out
    assert "skspread_showcase" in out and "lower is better" in out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--seed", "-1"], "--seed: must be an integer"),
        pytest.param(
            ["--device", "gpu"],
            "--device: device must be",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("torch") is None, reason="the device is torch's"
            ),
        ),
        (["--output", os.devnull + "/figures"], "cannot write to the output folder"),
    ],
)
def test_bad_arguments_are_usage_errors_before_anything_runs(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments + ["--quick"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_version_prints_the_package_version(capsys):
    import skspread

    assert _main_exits(["--version"], capsys).strip() == f"skspread {skspread.__version__}"


def test_quick_showcase_says_which_way_is_better(quick_run):
    """Each comparison states that lower is better and gives the ratio it shows."""
    result, _ = quick_run
    rows = _table_rows(result.stdout)
    for part, method in rows:
        if part != "line":
            assert "lower is better" in rows[part, method][0]
    assert "SpreadICA / FastICA: error" in result.stdout
    if HAS_TORCH:
        assert "delta-VAE / VAE:" in result.stdout


def test_quick_showcase_prints_progress_table_and_figure_folder(quick_run):
    result, output = quick_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/" in result.stdout and "done in" in result.stdout
    assert str(output.resolve()) in result.stdout
    rows = _table_rows(result.stdout)
    expected = {("line", "spread MLE"), ("line", "noise-only MLE"),
                ("ica", "SpreadICA"), ("ica", "FastICA")}
    if HAS_TORCH:
        expected |= {("digits", "delta-VAE (Gaussian spread)"),
                     ("digits", "VAE (noise on model only)")}
    else:
        assert "torch is not installed" in result.stdout
    assert set(rows) == expected
    assert all(seconds >= 0 for _, _, seconds in rows.values())
    assert (output / "summary.txt").read_text().strip() in result.stdout


def test_quick_showcase_line_model_shows_eq12_bias_and_consistent_spread(quick_run):
    """Paper eq 12: noise-only MLE converges to sqrt(|theta|^2 - sigma^2), spread MLE to |theta|.

    The estimated norm is the square root of the sample variance along
    theta, whose relative standard error is sqrt(2 / N); the norm's is half
    of that. Four standard errors is the tolerance.
    """
    result, _ = quick_run
    rows = _table_rows(result.stdout)
    n_samples = QUICK.line_sizes[-1]
    relative_error = 4 * 0.5 * math.sqrt(2 / n_samples)
    biased = math.sqrt(LINE_NORM**2 - LINE_NOISE_VARIANCE)
    spread_norm = rows["line", "spread MLE"][1]
    noise_only_norm = rows["line", "noise-only MLE"][1]
    assert abs(spread_norm - LINE_NORM) < relative_error * LINE_NORM
    assert abs(noise_only_norm - biased) < relative_error * LINE_NORM
    assert f"N={n_samples}" in rows["line", "spread MLE"][0]


def test_quick_showcase_ica_errors_are_those_of_a_recovered_mixing(quick_run):
    """Both methods recover the mixing of deterministic non-square ICA (relative error < 0.2)."""
    result, _ = quick_run
    rows = _table_rows(result.stdout)
    assert rows["ica", "SpreadICA"][1] < 0.2
    assert rows["ica", "FastICA"][1] < 0.2


def test_quick_showcase_writes_png_figures(quick_run):
    result, output = quick_run
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    expected = {"line_model.png", "ica.png"} if has_matplotlib else set()
    if HAS_TORCH and has_matplotlib:
        expected.add("delta_vae_samples.png")
    written = {path.name for path in output.glob("*.png")}
    assert expected <= written
    for name in written:
        content = (output / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 500


def test_showcase_without_deep_part_notes_the_skip(tmp_path):
    result = _run("--quick", "--no-deep", "--output", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "delta-VAE part is skipped" in result.stdout
    assert not (tmp_path / "out" / "delta_vae_samples.png").exists()
    assert all(part != "digits" for part, _ in _table_rows(result.stdout))


def test_image_grid_tiles_and_pads():
    import numpy as np

    from skspread._testing import image_grid

    grid = image_grid(np.zeros((3, 2, 2)), n_columns=2, pad=1, zoom=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1)
    assert grid[1:3, 1:3].max() == 0 and grid[0].min() == 1
    assert grid[4:6, 4:6].min() == 1  # the empty fourth cell stays background
