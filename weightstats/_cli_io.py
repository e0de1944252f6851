"""Files, progress and numbers for the ``weightstats`` command line.

Shared by the subcommands: input tables (CSV with a detected delimiter and a
hint when decoding fails, or Parquet), output files that are never written
over the input and never half-written (a temporary file renamed into place),
progress lines on stderr, and numbers formatted for people or for JSON.
"""

import contextlib
import csv
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from .cli import CLIError

PARQUET_SUFFIXES = (".parquet", ".pq")


def check_input_file(path):
    """Refuse a missing, unreadable or directory input before any work."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path} does not exist.")
    if p.is_dir():
        raise CLIError(f"{path} is a directory; give a CSV or Parquet file.")
    if not os.access(p, os.R_OK):
        raise CLIError(f"{path} is not readable (permission denied).")


def same_file(a, b):
    """Whether two paths name one file (however spelt, symbolic links included)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def check_output_file(flag, path, *, input_path=None, force=False):
    """Refuse an output path that would lose data or fail after the work is done.

    The input file is never written over, even with ``--force``; an existing
    file only with ``--force``; the directory must exist and be writable.
    """
    p = Path(path)
    if input_path is not None and same_file(path, input_path):
        raise CLIError(f"{flag} {path} is the input file; refusing to write over it "
                       "(even with --force). Choose another file name.")
    if p.is_dir():
        raise CLIError(f"{flag} {path} is a directory; give a file name.")
    parent = p.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {path}: the directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path}: cannot write to the directory {parent} "
                       "(permission denied).")
    if p.exists() and not force:
        raise CLIError(f"{flag} {path} already exists; pass --force to overwrite it or choose "
                       "another file name.")


@contextlib.contextmanager
def atomic_output(path, *, force=False):
    """Yield a temporary file beside ``path``; rename it onto ``path`` if the block succeeds.

    A failure (full disk, Ctrl-C) leaves an existing ``path`` as it was and no
    temporary file behind. An overwritten file keeps its permissions.
    """
    path = Path(path)
    if path.exists() and not force:  # it appeared while we were working
        raise CLIError(f"{path} already exists; pass --force to overwrite it.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_table(path, *, sep=None, encoding=None):
    """Read a CSV (delimiter detected unless ``sep``) or a Parquet file into a DataFrame."""
    import pandas as pd

    if Path(path).suffix.lower() in PARQUET_SUFFIXES:
        if sep is not None or encoding is not None:
            raise CLIError("--sep and --encoding apply to CSV files, not Parquet.")
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise CLIError("reading Parquet files needs pyarrow: pip install pyarrow.") from None
        except (ValueError, OSError) as exc:
            raise CLIError(f"could not read {path} as Parquet: {first_line(exc)}.") from None
    codec = encoding or "utf-8-sig"  # UTF-8, with or without a byte-order mark
    try:
        if sep is None:
            sep = sniff_separator(path, codec)
        else:
            sep = {"tab": "\t", "\\t": "\t", "space": " "}.get(sep, sep)
        return pd.read_csv(path, sep=sep, encoding=codec)
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"{path} is not valid {encoding or 'UTF-8'} text (byte "
            f"0x{exc.object[exc.start]:02x} at position {exc.start}); pass --encoding with the "
            "file's encoding, e.g. --encoding latin-1 or --encoding cp1252."
        ) from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path} is empty; it needs a header row and one row per unit.") from None
    except pd.errors.ParserError as exc:
        raise CLIError(f"could not parse {path} as CSV ({first_line(exc)}); check --sep "
                       f"(used {sep!r}).") from None


def sniff_separator(path, encoding, *, candidates=",;\t|"):
    """The delimiter of a CSV file, guessed from its start (``,`` if unclear)."""
    with open(path, encoding=encoding, newline="") as handle:
        sample = handle.read(64 * 1024)
    lines = sample.splitlines()
    if len(sample) == 64 * 1024 and len(lines) > 1:
        sample = "\n".join(lines[:-1])  # drop a partial last line
    try:
        return csv.Sniffer().sniff(sample, delimiters=candidates).delimiter
    except csv.Error:
        return ","


def first_line(exc):
    """The first line of an exception's message, without a final full stop."""
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


class Progress:
    """Progress lines on stderr: on a terminal or with ``--verbose``, never with ``--quiet``.

    Each line starts with the seconds since the command started.
    """

    def __init__(self, *, verbose=0, quiet=False, stream=None):
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = not quiet and (verbose > 0 or bool(isatty and isatty()))
        self.start = time.perf_counter()

    def __call__(self, message):
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:6.1f}s] {message}", file=self.stream, flush=True)


def plain(value):
    """A numpy scalar as the Python value it holds (for messages and JSON)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def plain_repr(value):
    """How a label reads in a message: strings bare, other values as Python literals."""
    value = plain(value)
    return value if isinstance(value, str) else repr(value)


def fmt(value, spec=".4g"):
    """A number for people: 4 significant digits, thousands separators, no "-0"."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return "0" if value == 0 else str(value)
    if spec == ".4g" and 1e3 <= abs(value) < 1e9:
        return f"{value:,.0f}"
    text = format(value, spec)
    return "0" if re.fullmatch(r"-0(\.0*)?", text) else text


def to_json(value):
    """``value`` with numpy scalars as Python values and NaN/infinity as None (null)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
