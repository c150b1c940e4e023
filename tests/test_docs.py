"""The documentation builds with warnings as errors and runs every example (issue 6).

This is how CI builds the docs: the slow tests (``python -m pytest -m slow``,
CI's second step) run ``sphinx-build -W`` with sphinx-gallery, which executes
every ``examples/plot_*.py``; a warning, a broken reference or an example that
raises fails the test. The README's own claims are checked in the default run.
"""

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "doc"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
NEEDS = ("sphinx", "sphinx_gallery", "numpydoc", "matplotlib", "pydata_sphinx_theme")

needs_docs = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in NEEDS),
    reason='the docs build needs the docs extra: pip install -e ".[docs]"',
)


@pytest.fixture(scope="module")
def html_build(tmp_path_factory):
    output = tmp_path_factory.mktemp("html")
    environment = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            # Re-run every example even when an earlier build in this
            # checkout left its output behind.
            "-D",
            "sphinx_gallery_conf.run_stale_examples=1",
            str(DOC),
            str(output),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return result, output


@pytest.mark.slow
@needs_docs
def test_docs_build_without_warnings(html_build):
    result, output = html_build
    problems = [
        line for line in (result.stdout + result.stderr).splitlines()
        if "WARNING" in line or "ERROR" in line or "Traceback" in line
    ]
    assert result.returncode == 0, "\n".join(problems) or result.stderr[-5000:]
    assert (output / "index.html").is_file()


@pytest.mark.slow
@needs_docs
def test_gallery_ran_every_example(html_build):
    # With --keep-going the build goes on past warnings, so this checks the
    # gallery even while a docstring warning fails the test above.
    result, output = html_build
    assert EXAMPLES, "no examples/plot_*.py found"
    match = re.search(r"executed (\d+) out of (\d+) files", result.stdout)
    assert match is not None, result.stdout[-2000:]
    assert int(match.group(1)) == int(match.group(2)) == len(EXAMPLES)
    for example in EXAMPLES:
        page = output / "auto_examples" / f"{example.stem}.html"
        assert page.is_file(), page
        # Every example draws at least one figure, which the gallery keeps.
        assert "sphx-glr-single-img" in page.read_text() or (
            "sphx-glr-multi-img" in page.read_text()
        ), example.name


@pytest.mark.slow
@needs_docs
def test_api_reference_lists_every_public_name(html_build):
    _, output = html_build
    import skspread
    import skspread.datasets
    import skspread.divergence
    import skspread.metrics
    import skspread.spread

    names = [f"skspread.{name}" for name in skspread.__all__ if name != "__version__"]
    for module in (skspread.spread, skspread.divergence, skspread.datasets, skspread.metrics):
        names += [f"{module.__name__}.{name}" for name in module.__all__]
    missing = [name for name in names if not (output / "generated" / f"{name}.html").is_file()]
    assert not missing, f"public names without an API page: {missing}"
    # A class page documents the methods, not only the class docstring.
    for estimator in ("SpreadFactorAnalysis", "SpreadICA", "DeltaVAE"):
        page = (output / "generated" / f"skspread.{estimator}.html").read_text()
        for method in ("fit", "transform", "sample", "score_samples", "score"):
            assert f'id="skspread.{estimator}.{method}"' in page, (estimator, method)


def test_readme_commands_are_the_ci_commands():
    """The README's test command is the one CI runs (.ci/run), and its main job installs the package."""
    readme = (ROOT / "README.rst").read_text()
    ci_commands = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.startswith("python3 -m venv")
    ]
    assert len(ci_commands) == 1 and ci_commands[0] in readme
    main_job = ci_commands[0].replace("[deep,test,docs,distributed]", "[deep,plot]").replace(
        "python -m pytest", "python -m skspread"
    )
    assert main_job in readme


def test_readme_tables_and_quickstart_output_are_what_the_code_writes():
    """The benchmark tables are those of benchmarks/results/ and the quickstart's
    output block is what its code prints, to the printed digits (else: run
    python benchmarks/update_readme.py)."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    ))
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "update_readme.py"), "--check"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]


def test_readme_quickstart_output_shows_eq12_bias_and_ica_recovery():
    """The printed norms: spread MLE at |theta| = 2, noise-only MLE at sqrt(3) (eq 12).

    The norms are square roots of sample variances over N = 100000 points
    (relative standard error sqrt(2 / N) / 2): four standard errors, plus
    the rounding of the print, is the tolerance. 0.08 is the ICA recovery
    bound of the SpreadICA issue.
    """
    readme = (ROOT / "README.rst").read_text()
    norms = re.search(r"\|theta\|: spread MLE (\S+), noise-only MLE (\S+)\n", readme)
    ica = re.search(r"SpreadICA: mixing error (\S+), mean log-likelihood (\S+)\n", readme)
    assert norms is not None and ica is not None
    spread_norm, noise_only_norm = map(float, norms.groups())
    error, score = map(float, ica.groups())
    tolerance = 4 * 0.5 * (2 / 100_000) ** 0.5 * 2.0 + 0.005
    assert abs(spread_norm - 2.0) < tolerance
    assert abs(noise_only_norm - 3**0.5) < tolerance
    assert error < 0.08 and math.isfinite(score)


@needs_docs
def test_readme_is_valid_restructuredtext():
    """PyPI and GitHub render README.rst only if docutils reads it without warnings."""
    from docutils.core import publish_doctree
    from docutils.utils import SystemMessage

    try:
        publish_doctree(
            (ROOT / "README.rst").read_text(),
            settings_overrides={"report_level": 2, "halt_level": 2},
        )
    except SystemMessage as message:
        pytest.fail(f"README.rst: {message}")
