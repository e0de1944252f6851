import subprocess
import sys

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
