"""The ``weightstats`` command line.

Subcommands live in their families; each module in ``SUBCOMMANDS`` provides
``register(subparsers)``, which adds a parser whose ``func`` default runs the
command and returns an exit status. Errors the user can fix (bad files,
missing columns, invalid options, unreadable or unwritable paths) are raised
as :class:`CLIError`, ``ValueError`` or ``OSError`` and printed as one
sentence with exit status 2, never as a traceback; Ctrl-C exits with status
130 and one line.
"""

import argparse
import importlib
import os
import sys

from ._version import __version__

__all__ = ["CLIError", "main"]

# Modules that add subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = ["weightstats.cli", "weightstats.balancing._cli"]


class CLIError(Exception):
    """An error caused by the command-line input; reported without a traceback."""


def register(subparsers):
    """Add the built-in ``info`` and ``estimators`` subcommands."""
    info = subparsers.add_parser(
        "info", help="show versions of weightstats and its dependencies"
    )
    info.set_defaults(func=_run_info)
    estimators = subparsers.add_parser(
        "estimators", help="list the public estimators and what they are"
    )
    estimators.add_argument(
        "--type",
        choices=["classifier", "regressor", "transformer", "outlier_detector"],
        help="only estimators of this kind",
    )
    estimators.set_defaults(func=_run_estimators)


def _run_info(args):
    from importlib import metadata

    print(f"weightstats   {__version__}")
    print(f"python        {sys.version.split()[0]}")
    for dist in ("numpy", "scipy", "scikit-learn", "pandas", "numba", "cvxpy", "statsmodels",
                 "matplotlib", "torch", "skorch", "dask"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{dist:<14}{version}")
    return 0


def _run_estimators(args):
    from .utils import all_estimators

    for name, cls in all_estimators(type_filter=args.type):
        summary = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:<32}{cls.__module__.split('._')[0]:<28}{summary[0] if summary else ''}")
    return 0


def build_parser():
    """The argument parser with every registered subcommand.

    Returns
    -------
    parser : argparse.ArgumentParser
        The ``weightstats`` parser.
    """
    parser = argparse.ArgumentParser(
        prog="weightstats",
        description="Weighting and estimation methods: balancing weights, effect estimates "
        "and diagnostics from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"weightstats {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None):
    """Run the ``weightstats`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on a usage or input error, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return status
    except (CLIError, ValueError) as exc:
        return _error(args.command, str(exc).strip() or exc.__class__.__name__)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # e.g. piped into `head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(args.command, f"{where}{exc.strerror or exc}.")
    except KeyboardInterrupt:
        print(f"\nweightstats {args.command}: interrupted; nothing more was written.",
              file=sys.stderr)
        return 130


def _error(command, message):
    print(f"weightstats {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2
