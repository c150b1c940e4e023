"""``python -m skspread``: a few-minute tour of the spread divergence on built-in data."""

import argparse
import os
import sys

from ._version import __version__

DESCRIPTION = """\
Run the skspread showcase on built-in data and print a summary table:
(1) the line model x = z theta of the paper's eq 7-12, where maximum
likelihood with noise on the model only shrinks theta and spread maximum
likelihood does not; (2) deterministic non-square ICA (10 observations of 5
sources), SpreadICA beside scikit-learn's FastICA, mixing error and time;
(3) the delta-VAE beside the standard VAE on scikit-learn's load_digits,
Frechet distance of their samples to the data in pixel space and a PNG of
samples (needs torch; skipped with a note otherwise). Errors and distances:
lower is better. The default run takes under three minutes on two CPU
cores."""


def _seed(text):
    """A seed for numpy: an integer from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, not {text!r}")
    return value


def build_parser():
    """The command-line parser of ``python -m skspread``."""
    parser = argparse.ArgumentParser(
        prog="python -m skspread",
        description=DESCRIPTION,
        epilog="The figures (PNG) and summary.txt go to the --output folder.",
    )
    parser.add_argument("--version", action="version", version=f"skspread {__version__}")
    parser.add_argument(
        "--output",
        "-o",
        default="skspread_showcase",
        metavar="DIR",
        help="folder for the figures and the table (default: ./skspread_showcase)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small problem sizes and few epochs: seconds instead of minutes "
        "(used by the tests; the numbers are rougher)",
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, help="seed of the data and the estimators (default: 0)"
    )
    parser.add_argument(
        "--no-deep", action="store_true", help="skip the delta-VAE part (torch)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="device of the delta-VAE: auto (CUDA when available), cpu or cuda (default: auto)",
    )
    return parser


def main(argv=None):
    """Entry point of ``python -m skspread`` and of the ``skspread`` command."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        os.makedirs(arguments.output, exist_ok=True)
    except OSError as error:
        parser.error(f"cannot write to the output folder {arguments.output!r}: {error}")
    if not arguments.no_deep:
        # The device is checked before the first parts run, not after them.
        from .deep._device import resolve_device

        try:
            resolve_device(arguments.device)
        except ImportError:
            pass  # no torch: the showcase skips its deep part with a note
        except (ValueError, RuntimeError) as error:
            parser.error(f"argument --device: {error}")
    from ._showcase import run

    def log(line):
        print(line, flush=True)

    run(
        arguments.output,
        quick=arguments.quick,
        random_state=arguments.seed,
        deep=not arguments.no_deep,
        device=arguments.device,
        log=log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
