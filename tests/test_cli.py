import subprocess
import sys

import pytest

from weightstats.cli import CLIError, build_parser, main


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "info" in out and "estimators" in out


def test_info_reports_versions(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "weightstats" in out and "numpy" in out


def test_estimators_subcommand_lists_discovered_estimators(capsys):
    from weightstats.utils import all_estimators

    assert main(["estimators"]) == 0
    out = capsys.readouterr().out
    for name, _ in all_estimators():
        assert name in out


def test_user_errors_exit_2_without_traceback(capsys, monkeypatch):
    parser = build_parser()

    def failing(args):
        raise CLIError("column 'foo' is not in the CSV.")

    args = parser.parse_args(["info"])
    monkeypatch.setattr(args, "func", failing)
    monkeypatch.setattr("weightstats.cli.build_parser", lambda: _FixedParser(args))
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "weightstats info: error: column 'foo' is not in the CSV."


@pytest.mark.parametrize("exc, status, expected", [
    (PermissionError(13, "Permission denied", "/data/w.csv"), 2,
     "weightstats info: error: /data/w.csv: Permission denied."),
    (IsADirectoryError(21, "Is a directory", "/data"), 2,
     "weightstats info: error: /data: Is a directory."),
    (ValueError("bad value\n  over two lines."), 2,
     "weightstats info: error: bad value over two lines."),
    (KeyboardInterrupt(), 130, "weightstats info: interrupted; nothing more was written."),
])
def test_errors_and_interrupts_are_one_line(capsys, monkeypatch, exc, status, expected):
    args = build_parser().parse_args(["info"])

    def failing(args):
        raise exc

    monkeypatch.setattr(args, "func", failing)
    monkeypatch.setattr("weightstats.cli.build_parser", lambda: _FixedParser(args))
    assert main(["info"]) == status
    assert capsys.readouterr().err.strip() == expected


def test_closed_pipe_ends_quietly():
    """``weightstats info | head -0``: no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "weightstats", "info"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


class _FixedParser:
    def __init__(self, args):
        self.args = args

    def parse_args(self, argv):
        return self.args


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "weightstats", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: weightstats" in out.stdout
    assert "balance" in out.stdout
