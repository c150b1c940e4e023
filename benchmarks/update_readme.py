"""Write the README's generated parts: the benchmark tables and the quickstart's output.

The README must say what the code and the benchmarks say. Two parts of it
are therefore generated, never edited by hand:

- each benchmark table, with the command that made it, is copied from the
  first table of a results file in ``benchmarks/results/``. In the README a
  generated table lies between the comment lines
  ``.. generated from benchmarks/results/<file>.md by benchmarks/update_readme.py``
  and ``.. end of generated table``;
- the output block after the quickstart's code (the ``.. code-block:: text``
  that follows the ``.. code-block:: python`` of the Quickstart section) is
  what that code prints, run here.

Usage (from the repository root)::

    python benchmarks/update_readme.py           # rewrite README.rst
    python benchmarks/update_readme.py --check   # exit 1 and show a diff if it is stale

``tests/test_docs.py`` runs ``--check``, so a stale README fails the tests.
"""

import argparse
import contextlib
import difflib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
SCRIPT = "benchmarks/update_readme.py"

GENERATED_TABLE = re.compile(
    rf"^\.\. generated from (?P<source>benchmarks/results/\S+\.md) by {re.escape(SCRIPT)}\n"
    r"(?P<body>.*?)"
    r"^\.\. end of generated table\n",
    re.DOTALL | re.MULTILINE,
)
# The command line of a results file: "Command: `...`" or "Made by `...`".
COMMAND = re.compile(r"^(?:Command:|Made by) `([^`]+)`", re.MULTILINE)
QUICKSTART = "Quickstart\n----------\n"
INDENT = "   "


def markdown_tables(text):
    """The pipe tables of a Markdown text, each as a list of rows of cells."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
            continue
        if current:
            cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in current]
            # The second row is the header rule (|---|:---:|).
            tables.append([cells[0], *cells[2:]])
            current = []
    return tables


def grid_table(rows):
    """reStructuredText grid table of ``rows`` (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def rule(character):
        return "+" + "+".join(character * (width + 2) for width in widths) + "+"

    def line(row):
        return "|" + "|".join(f" {cell.ljust(width)} " for cell, width in zip(row, widths)) + "|"

    lines = [rule("-"), line(rows[0]), rule("=")]
    for row in rows[1:]:
        lines += [line(row), rule("-")]
    return "\n".join(lines)


def generated_table(source):
    """The README's text for the first table of the results file ``source``."""
    text = (ROOT / source).read_text()
    command = COMMAND.search(text)
    if command is None:
        raise ValueError(f"{source} names no command ('Command: `...`' or 'Made by `...`').")
    tables = markdown_tables(text)
    if not tables:
        raise ValueError(f"{source} has no table.")
    more = len(tables) - 1
    others = f"{more} more table{'s' if more > 1 else ''}, " if more else ""
    return (
        f"\nReproduce with::\n\n{INDENT}{command.group(1)}\n\n{grid_table(tables[0])}\n\n"
        f"From `{source} <{source}>`_, which also has {others}the machine and the settings.\n\n"
    )


def with_tables(readme):
    """``readme`` with every generated table rewritten from its results file."""

    def replace(match):
        source = match.group("source")
        return (
            f".. generated from {source} by {SCRIPT}\n"
            + generated_table(source)
            + ".. end of generated table\n"
        )

    return GENERATED_TABLE.sub(replace, readme)


def _indented_block(text, start):
    """The indented lines of the directive at ``start``: (begin, end, dedented text)."""
    begin = text.index("\n\n", start) + 2
    end = begin
    for line in text[begin:].splitlines(keepends=True):
        if line.strip() and not line.startswith(INDENT):
            break
        end += len(line)
    while text[begin:end].endswith("\n\n"):
        end -= 1
    block = "".join(line[len(INDENT) :] for line in text[begin:end].splitlines(keepends=True))
    return begin, end, block


def quickstart_code(readme):
    """The quickstart's Python code."""
    section = readme.index(QUICKSTART)
    _, _, code = _indented_block(readme, readme.index(".. code-block:: python", section))
    return code


def quickstart_output(readme):
    """(begin, end, text) of the quickstart's output block in ``readme``."""
    section = readme.index(QUICKSTART)
    code = readme.index(".. code-block:: python", section)
    return _indented_block(readme, readme.index(".. code-block:: text", code))


def run_quickstart(readme):
    """What the quickstart's code prints."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(quickstart_code(readme), "README.rst (quickstart)", "exec"), {})
    return printed.getvalue()


def with_quickstart_output(readme):
    """``readme`` with the quickstart's output block replaced by what the code prints."""
    begin, end, _ = quickstart_output(readme)
    lines = run_quickstart(readme).rstrip("\n").splitlines()
    return readme[:begin] + "\n".join(INDENT + line for line in lines) + "\n" + readme[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 with a diff if README.rst is stale"
    )
    parser.add_argument(
        "--tables-only", action="store_true", help="leave the quickstart's output as it is"
    )
    arguments = parser.parse_args(argv)
    current = README.read_text()
    updated = with_tables(current)
    if not arguments.tables_only:
        updated = with_quickstart_output(updated)
    if updated == current:
        print("README.rst is up to date.")
        return 0
    if arguments.check:
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                updated.splitlines(keepends=True),
                "README.rst",
                f"README.rst as {SCRIPT} writes it",
            )
        )
        print(f"\nREADME.rst is stale: run python {SCRIPT}")
        return 1
    README.write_text(updated)
    print("README.rst rewritten.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
