"""``weightstats balance``: the README's main command, as a user meets it.

Most runs use ``--method entropy`` on 300 Kang-Schafer rows (a fraction of a
second); the default IPM run on the full LaLonde data is the slow acceptance
test.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from weightstats.balancing import EntropyBalancer, balance_table
from weightstats.balancing._cli import cli_words
from weightstats.cli import main
from weightstats.datasets import load_lalonde, make_kang_schafer

BASE = ["--treatment", "treat", "--outcome", "y"]
FAST = [*BASE, "--method", "entropy"]


@pytest.fixture
def ks_csv(tmp_path):
    ks = make_kang_schafer(300, random_state=0, as_frame=True)
    frame = ks.data.assign(treat=ks.treatment, y=ks.target)
    path = tmp_path / "ks.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _write(tmp_path, frame, name="data.csv", **kwargs):
    path = tmp_path / name
    frame.to_csv(path, index=False, **kwargs)
    return str(path)


def _one_line_error(capsys, pattern=None):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("weightstats balance: error: "), err
    assert "Traceback" not in err
    if pattern is not None:
        assert re.search(pattern, err), err
    return err


@pytest.fixture
def no_fit(monkeypatch):
    """Fail loudly if a balancer is fitted: the checks must come first."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("fit() ran before the options were checked")

    for cls in ("EntropyBalancer", "IPMBalancer", "PropensityBalancer"):
        monkeypatch.setattr(f"weightstats.balancing.{cls}.fit", refuse)


# ------------------------------------------------------------------ runs


@pytest.mark.slow
def test_default_run_on_lalonde_recovers_the_experimental_effect(tmp_path, capsys):
    """Acceptance: NSW treated vs CPS controls, ATT by MMD weights: every |SMD| < 0.1
    after weighting, the 95% interval contains the experimental $1,794, and the output
    shows that benchmark and the naive difference beside the estimate."""
    weights_file = tmp_path / "w.csv"
    assert main(["balance", "--weights-out", str(weights_file)]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^ATT\s+(\S+)\s+(\S+)\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s*$", out, re.MULTILINE)
    effect, lo, hi = (float(row.group(i).replace(",", "")) for i in (1, 3, 4))
    assert lo < 1794.34 < hi and lo < effect < hi
    assert re.search(r"experimental benchmark\s+1,794", out)
    assert re.search(r"naive difference\s+-8,498", out)
    assert "converged" in out and "NOT converged" not in out
    weights = pd.read_csv(weights_file)["weight"].to_numpy()
    data = load_lalonde(controls="cps")
    table = balance_table(data.data, data.treatment, weights)
    assert table["smd_after"].abs().max() < 0.1
    assert table["smd_before"].abs().max() > 1.0


@pytest.fixture
def small_lalonde(monkeypatch):
    """The built-in data cut to 185 treated and 600 CPS controls, for fast demo runs."""
    full = load_lalonde(controls="cps")
    keep = np.r_[np.flatnonzero(full.treatment == 1), np.flatnonzero(full.treatment == 0)[:600]]
    small = load_lalonde(controls="cps")
    small.frame = full.frame.iloc[keep].reset_index(drop=True)

    def fake(*, controls="nsw", as_frame=True):
        return small if controls == "cps" else load_lalonde(controls=controls)

    monkeypatch.setattr("weightstats.datasets.load_lalonde", fake)
    return small.frame


def test_builtin_data_prints_the_benchmark_beside_the_estimate(small_lalonde, capsys):
    assert main(["balance", "--method", "entropy"]) == 0
    out = capsys.readouterr().out
    y, t = small_lalonde["re78"], small_lalonde["treat"]
    naive = y[t == 1].mean() - y[t == 0].mean()
    assert re.search(r"this estimate\s+\S+\s+\(95% CI", out)
    assert re.search(r"experimental benchmark\s+1,794\s+\(NSW treated vs randomised", out)
    assert re.search(rf"naive difference\s+{naive:,.0f}\s+\(NSW treated vs CPS", out)
    assert main(["balance", "--method", "entropy", "--format", "json"]) == 0
    bench = json.loads(capsys.readouterr().out)["benchmark"]
    assert bench["experimental_att"] == pytest.approx(1794.34)
    assert bench["naive_difference"] == pytest.approx(naive)


def test_csv_run_prints_effect_balance_weights_and_solver(ks_csv, tmp_path, capsys):
    path, frame = ks_csv
    args = ["balance", str(path), *BASE, "--covariates", "X1,X2,X3,X4", "--method", "entropy",
            "--weights-out", str(tmp_path / "w.csv")]
    assert main(args) == 0
    out = capsys.readouterr().out
    for piece in ("Treatment effect (ATT)", "SMD before", "Effective sample size", "Solver:",
                  "mean outcome control (weighted)", "Summary of weights",
                  f"weights written to {tmp_path / 'w.csv'}"):
        assert piece in out
    written = pd.read_csv(tmp_path / "w.csv")
    assert list(written.columns) == ["row", "treated", "weight"]
    assert len(written) == len(frame)
    assert written.loc[written.treated == 0, "weight"].sum() == pytest.approx(frame.treat.sum())


@pytest.mark.requires("matplotlib")
def test_love_plot_is_written(ks_csv, tmp_path, capsys):
    path, _ = ks_csv
    png = tmp_path / "love.png"
    assert main(["balance", str(path), *FAST, "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 1000
    assert f"love plot written to {png}" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [["--method", "ipm", "--ipm", "energy"],
                                   ["--l2-penalty", "1e-5", "--max-weight", "5"],
                                   ["--bandwidth", "median"],
                                   ["--method", "propensity", "--estimand", "ATE"],
                                   ["--method", "propensity", "--estimand", "ATO"],
                                   ["--se", "bootstrap", "--n-bootstrap", "20", "--method",
                                    "entropy", "--augment", "ols"]])
def test_csv_run_options(ks_csv, extra, capsys):
    path, _ = ks_csv
    assert main(["balance", str(path), *BASE, *extra]) == 0
    assert "Treatment effect" in capsys.readouterr().out


@pytest.mark.parametrize("method, se_method", [("ipm", "residual"), ("entropy", "m-estimation"),
                                               ("propensity", "m-estimation")])
def test_default_standard_error_is_each_methods_calibrated_choice(ks_csv, capsys, method,
                                                                   se_method):
    assert main(["balance", str(ks_csv[0]), *BASE, "--method", method, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["effect"]["se_method"] == se_method


def test_estimand_decides_which_mean_is_labelled_weighted(ks_csv, capsys):
    path, _ = ks_csv
    assert main(["balance", str(path), *FAST, "--estimand", "ATC"]) == 0
    out = capsys.readouterr().out
    assert "mean outcome treated (weighted)" in out
    assert "mean outcome control (weighted)" not in out


def test_sample_weight_and_id_columns(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    frame = frame.assign(w=2.0, unit=[f"u{i}" for i in range(len(frame))])
    path = _write(tmp_path, frame)
    out_file = tmp_path / "w.csv"
    assert main(["balance", path, *FAST, "--sample-weight", "w", "--id-column", "unit",
                 "--format", "json", "--weights-out", str(out_file)]) == 0
    doubled = json.loads(capsys.readouterr().out)
    # the weight and id columns are neither covariates nor ignored
    assert doubled["data"]["covariates"] == ["X1", "X2", "X3", "X4"]
    assert main(["balance", path, *FAST, "--covariates", "X1,X2,X3,X4", "--format",
                 "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert doubled["effect"]["estimate"] == pytest.approx(plain["effect"]["estimate"])
    written = pd.read_csv(out_file)
    assert list(written.columns) == ["unit", "treated", "weight"]
    assert written["unit"].tolist() == frame["unit"].tolist()
    # the largest weights are named by the ids
    largest = doubled["weights"]["largest"][0]
    heaviest = written.loc[written["weight"].idxmax()]
    assert largest["row"] == heaviest["unit"] and largest["weight"] == pytest.approx(
        2 * heaviest["weight"])  # the summary is of sample weight x weight


# ------------------------------------------------------------------ 1. no data loss


@pytest.mark.parametrize("flag, name", [("--weights-out", "w.csv"), ("--plot", "love.png")])
def test_existing_output_is_refused_without_force(ks_csv, tmp_path, capsys, no_fit, flag,
                                                  name):
    path, _ = ks_csv
    target = tmp_path / name
    target.write_bytes(b"keep me")
    assert main(["balance", str(path), *FAST, flag, str(target)]) == 2
    _one_line_error(capsys, rf"{flag} .*{name} already exists; pass --force")
    assert target.read_bytes() == b"keep me"


def test_force_overwrites_atomically(ks_csv, tmp_path, capsys):
    path, frame = ks_csv
    target = tmp_path / "w.csv"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    assert main(["balance", str(path), *FAST, "--weights-out", str(target), "--force"]) == 0
    assert len(pd.read_csv(target)) == len(frame)
    assert target.stat().st_mode & 0o777 == 0o640  # an overwritten file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ks.csv", "w.csv"]  # no temp files


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
@pytest.mark.parametrize("flag", ["--weights-out", "--plot"])
def test_input_file_is_never_overwritten_even_with_force(ks_csv, tmp_path, capsys, no_fit,
                                                         spelling, flag):
    path, _ = ks_csv
    before = path.read_bytes()
    target = {"same": str(path), "dotted": str(tmp_path / "." / ".." / tmp_path.name / "ks.csv"),
              "symlink": str(tmp_path / "link.csv")}[spelling]
    if spelling == "symlink":
        os.symlink(path, target)
    assert main(["balance", str(path), *FAST, flag, target, "--force"]) == 2
    _one_line_error(capsys, r"is the input file; refusing to write over it \(even with --force\)")
    assert path.read_bytes() == before


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(ks_csv, tmp_path, capsys,
                                                                 monkeypatch):
    path, _ = ks_csv
    target = tmp_path / "w.csv"
    target.write_text("old\n")

    def disk_full(self, file, *args, **kwargs):
        with open(file, "w") as handle:
            handle.write("row,treated,wei")
        raise OSError(28, "No space left on device", str(file))

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    assert main(["balance", str(path), *FAST, "--weights-out", str(target), "--force"]) == 2
    _one_line_error(capsys, "No space left on device")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ks.csv", "w.csv"]


# ------------------------------------------------------------------ 2. roles


@pytest.mark.parametrize("extra, pattern", [
    (["--covariates", "treat,X1"], r"column 'treat' is the --treatment column and cannot also"),
    (["--covariates", "y,X1"], r"column 'y' is the --outcome column and cannot also"),
    (["--outcome", "treat"], r"column 'treat' is given as both --treatment and --outcome"),
    (["--sample-weight", "y"], r"column 'y' is given as both --outcome and --sample-weight"),
    (["--id-column", "X1", "--covariates", "X1,X2"], r"'X1' is the --id-column column"),
    (["--covariates", "X1,X2,X1"], r"--covariates names 'X1' more than once"),
])
def test_overlapping_roles_are_refused(ks_csv, capsys, no_fit, extra, pattern):
    path, _ = ks_csv
    assert main(["balance", str(path), *FAST, *extra]) == 2  # a repeated flag: the last wins
    _one_line_error(capsys, pattern)


# ------------------------------------------------------------------ 3. progress


def test_verbose_reports_phases_and_bootstrap_progress_on_stderr(ks_csv, capsys):
    path, _ = ks_csv
    assert main(["balance", str(path), *FAST, "--se", "bootstrap", "--n-bootstrap", "6",
                 "-v"]) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert re.search(r"^\[\s*\d+\.\ds\] reading .*ks\.csv$", err, re.MULTILINE)
    assert re.search(r"fitting weights: EntropyBalancer, 156 control units towards 144 "
                     "treated", err)
    assert "weights done: control arm" in err
    # the estimator's own bootstrap progress (verbose is passed through), with time left
    assert re.search(r"^bootstrap: 1/6 \(17%\), \d+:\d\d elapsed, about \d+:\d\d left$", err,
                     re.MULTILINE)
    assert re.search(r"^bootstrap: 6/6 \(100%\)", err, re.MULTILINE)
    assert "\r" not in err and "Treatment effect" not in err
    assert "Treatment effect" in captured.out and "bootstrap:" not in captured.out


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("extra, shown", [([], True), (["-q"], False), (["-q", "-v"], False)])
def test_progress_on_a_terminal_unless_quiet(ks_csv, capsys, monkeypatch, extra, shown):
    path, _ = ks_csv
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["balance", str(path), *FAST, *extra]) == 0
    assert ("fitting weights" in terminal.getvalue()) is shown


def test_piped_stderr_gets_no_progress_by_default(ks_csv, capsys):
    path, _ = ks_csv
    assert main(["balance", str(path), *FAST, "--se", "bootstrap", "--n-bootstrap", "5"]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ 4. no tracebacks


@pytest.mark.parametrize("case, pattern", [
    ("directory", r"is a directory; give a CSV or Parquet file"),
    ("missing_file", r"does not exist"),
    ("out_dir_missing", r"--weights-out .*: the directory .*nonexistent.* does not exist"),
    ("out_is_dir", r"--weights-out .* is a directory; give a file name"),
    ("plot_suffix", r"--plot .*love\.txt: use a \.png, \.pdf or \.svg file name"),
    ("same_outputs", r"--weights-out and --plot name the same file"),
    ("alpha_zero", r"--alpha must be between 0 and 1"),
    ("alpha_big", r"--alpha must be between 0 and 1"),
    ("n_bootstrap", r"--n-bootstrap must be at least 2; got 1"),
    ("n_jobs", r"--n-jobs must be a positive number"),
    ("bandwidth", r"--bandwidth must be a positive number or 'median'; got 'wide'"),
    ("bandwidth_other_ipm", r"--bandwidth applies to --ipm mmd only"),
    ("ipm_for_entropy", r"--ipm applies to --method ipm only"),
    ("unknown_ipm", r"unknown --ipm 'mdm'; choose one of .*mmd"),
    ("max_weight", r"--max-weight must be positive"),
    ("encoding", r"unknown --encoding 'utf-9'"),
    ("ato_needs_propensity", r"--estimand ATO \(overlap weights\) needs --method propensity"),
])
def test_bad_options_exit_2_before_fitting(ks_csv, tmp_path, capsys, no_fit, case, pattern):
    path, _ = ks_csv
    src = str(path)
    extra = {
        "directory": [], "missing_file": [],
        "out_dir_missing": ["--weights-out", str(tmp_path / "nonexistent" / "w.csv")],
        "out_is_dir": ["--weights-out", str(tmp_path)],
        "plot_suffix": ["--plot", str(tmp_path / "love.txt")],
        "same_outputs": ["--weights-out", str(tmp_path / "o.png"), "--plot",
                         str(tmp_path / "o.png")],
        "alpha_zero": ["--alpha", "0"], "alpha_big": ["--alpha", "1.5"],
        "n_bootstrap": ["--se", "bootstrap", "--n-bootstrap", "1"],
        "n_jobs": ["--n-jobs", "0"],
        "bandwidth": ["--method", "ipm", "--bandwidth", "wide"],
        "bandwidth_other_ipm": ["--method", "ipm", "--ipm", "energy", "--bandwidth", "2"],
        "ipm_for_entropy": ["--ipm", "energy"],
        "unknown_ipm": ["--method", "ipm", "--ipm", "mdm"],
        "max_weight": ["--method", "ipm", "--max-weight", "0"],
        "encoding": ["--encoding", "utf-9"],
        "ato_needs_propensity": ["--estimand", "ATO"],
    }[case]
    if case == "directory":
        src = str(tmp_path)
    elif case == "missing_file":
        src = str(tmp_path / "nope.csv")
    if case == "same_outputs":
        pytest.importorskip("matplotlib")
    assert main(["balance", src, *FAST, *extra]) == 2
    _one_line_error(capsys, pattern)


def test_ctrl_c_exits_130_with_one_line(ks_csv, capsys, monkeypatch):
    path, _ = ks_csv

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(EntropyBalancer, "fit", interrupted)
    assert main(["balance", str(path), *FAST]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "weightstats balance: interrupted; nothing more was written."


def test_ctrl_c_in_a_real_process_has_no_traceback():
    """SIGINT while the default run fits its weights: status 130, one line."""
    # A test runner (or a library it loaded) may ignore SIGINT, and an ignored
    # signal stays ignored across exec: give the command the default a shell gives it.
    proc = subprocess.Popen([sys.executable, "-m", "weightstats", "balance", "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stderr:
            if "fitting weights" in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip() == "weightstats balance: interrupted; nothing more was written."
    assert out == ""


def test_no_traceback_from_the_command_for_an_unwritable_output(tmp_path):
    args = ["--weights-out", str(tmp_path / "nonexistent" / "dir" / "w.csv")]
    proc = subprocess.run([sys.executable, "-m", "weightstats", "balance", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""  # refused before any result was printed


def test_runtime_warnings_reach_the_user_as_one_line_each(ks_csv, capsys, monkeypatch):
    import warnings

    def noisy_table(self):
        warnings.warn("invalid value encountered in divide", RuntimeWarning, stacklevel=2)
        return original(self)

    original = EntropyBalancer.balance_table
    monkeypatch.setattr(EntropyBalancer, "balance_table", noisy_table)
    assert main(["balance", str(ks_csv[0]), *FAST]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "warning: invalid value encountered in divide"


# ------------------------------------------------------------------ 5. messages


@pytest.mark.parametrize("case, pattern", [
    ("missing_column", r"--treatment 'dose' is not a column of the data \(columns: X1, X2"),
    ("misspelt_column", r"Did you mean 'treat'\?"),
    ("non_binary", r"--treatment column 'treat' must have exactly two values .* it has 3: "
                   r"0, 1, 2\."),
    ("nan", r"1 row\(s\) have missing values \(in X2; the first is data row 4\)"),
    ("short_row", r"1 row\(s\) have missing values \(in X3, X4, treat, y; the first is data row "
                  r"301\)"),
    ("small_group", r"the treated group has 1 unit\(s\); balancing needs at least 2"),
    ("text_covariate", r"covariate 'X1' is not numeric \(e\.g\. 'a'\).* with --covariates"),
    ("text_outcome", r"--outcome column 'y' is not numeric"),
    ("no_columns", r"needs --treatment and --outcome"),
    ("string_labels", r"--treatment column 'treat' has the values no, yes; pass "
                      r"--treated-label .*\(e\.g\. --treated-label yes\)"),
    ("header_only", r"has a header but no data rows"),
    ("empty_file", r"is empty; it needs a header row"),
    ("negative_sample_weight", r"--sample-weight column 'w' must be non-negative"),
])
def test_bad_data_exit_2_with_one_sentence_in_cli_terms(ks_csv, tmp_path, capsys, case,
                                                        pattern):
    _, frame = ks_csv
    frame = frame.copy()
    args = list(BASE)
    if case == "missing_column":
        args = ["--treatment", "dose", "--outcome", "y"]
    elif case == "misspelt_column":
        args = ["--treatment", "Treat", "--outcome", "y"]
    elif case == "non_binary":
        frame["treat"] = np.arange(len(frame)) % 3
    elif case == "nan":
        frame.loc[3, "X2"] = np.nan
    elif case == "small_group":
        frame["treat"] = 0
        frame.loc[0, "treat"] = 1
    elif case == "text_covariate":
        frame["X1"] = "a"
    elif case == "text_outcome":
        frame["y"] = "high"
    elif case == "no_columns":
        args = []
    elif case == "string_labels":
        frame["treat"] = np.where(frame["treat"] == 1, "yes", "no")
    elif case == "header_only":
        frame = frame.iloc[:0]
    elif case == "negative_sample_weight":
        frame["w"] = -1.0
        args += ["--sample-weight", "w"]
    path = _write(tmp_path, frame)
    if case == "short_row":
        with open(path, "a") as handle:
            handle.write("1.0,2.0\n")
    elif case == "empty_file":
        open(path, "w").close()
    assert main(["balance", path, *args]) == 2
    err = _one_line_error(capsys, pattern)
    for api_word in ("pos_label", "np.int64", "entries but X has", "n_samples"):
        assert api_word not in err


def test_treated_label_selects_the_treated_group(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    frame = frame.assign(treat=np.where(frame["treat"] == 1, "yes", "no"))
    path = _write(tmp_path, frame, "labels.csv")
    assert main(["balance", path, *FAST, "--treated-label", "yes"]) == 0
    out = capsys.readouterr().out
    assert "144 treated (treat = yes)" in out
    assert main(["balance", path, *FAST, "--treated-label", "maybe"]) == 2
    _one_line_error(capsys, r"--treated-label 'maybe' is not a value of the --treatment column "
                            r"'treat' \(its values: no, yes\)")


def test_two_numeric_labels_treat_the_larger_as_treated(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    path = _write(tmp_path, frame.assign(treat=frame["treat"] + 1))
    assert main(["balance", path, *FAST]) == 0
    assert "144 treated (treat = 2)" in capsys.readouterr().out
    assert main(["balance", path, *FAST, "--treated-label", "1"]) == 0
    assert "156 treated (treat = 1)" in capsys.readouterr().out
    floats = _write(tmp_path, frame.assign(treat=frame["treat"] + 1.0), "floats.csv")
    assert main(["balance", floats, *FAST, "--treated-label", "1"]) == 0  # names 1.0
    assert "156 treated (treat = 1.0)" in capsys.readouterr().out


def test_notes_and_library_messages_name_the_flags(ks_csv, capsys):
    assert main(["balance", str(ks_csv[0]), *FAST, "--se", "sandwich"]) == 0
    out = capsys.readouterr().out
    assert "use --se bootstrap to include the uncertainty of the weights" in out
    assert "se='bootstrap'" not in out


@pytest.mark.parametrize("message, expected", [
    ("treatment has labels ['a', 'b']; pass pos_label= to say which one marks the treated "
     "group.", "treatment has labels ['a', 'b']; pass --treated-label to say which one marks "
               "the treated group."),
    ("n_resamples must be an integer >= 2; got 1.", "--n-bootstrap must be an integer >= 2; "
                                                    "got 1."),
    ("use se='bootstrap' to include it", "use --se bootstrap to include it"),
    ("max_weight=0.5 is infeasible: the control arm's weights must sum to 144, which needs "
     "max_weight >= 0.9231.", "--max-weight 0.5 is infeasible: the control arm's weights must "
                              "sum to 144, which needs --max-weight >= 0.9231."),
    ("use fewer moments or IPMBalancer, which minimises imbalance",
     "use fewer moments or --method ipm, which minimises imbalance"),
])
def test_library_vocabulary_is_translated_to_flags(message, expected):
    assert cli_words(message) == expected


def test_infeasible_max_weight_is_reported_with_the_flag(ks_csv, capsys):
    assert main(["balance", str(ks_csv[0]), *BASE, "--max-weight", "0.5"]) == 2
    _one_line_error(capsys, r"^weightstats balance: error: --max-weight 0\.5 is infeasible: .* "
                            r"needs --max-weight >= ")


# ------------------------------------------------------------------ 6. input formats


@pytest.mark.parametrize("sep, flag", [(";", None), ("\t", None), ("|", None), (";", ";"),
                                       ("\t", "tab")])
def test_delimiter_is_detected_or_given(ks_csv, tmp_path, capsys, sep, flag):
    _, frame = ks_csv
    path = _write(tmp_path, frame, "data.txt", sep=sep)
    extra = ["--sep", flag] if flag else []
    assert main(["balance", path, *FAST, *extra, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["covariates"] == ["X1", "X2", "X3", "X4"]


def test_wrong_separator_is_explained(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    path = _write(tmp_path, frame, sep=";")
    assert main(["balance", path, *FAST, "--sep", ","]) == 2
    _one_line_error(capsys, r"--treatment 'treat' is not a column of the data \(columns: "
                            r"X1;X2;X3;X4;treat;y\)")


def test_encoding_hint_and_option(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    path = _write(tmp_path, frame.rename(columns={"X1": "âge"}), encoding="latin-1")
    assert main(["balance", path, *FAST]) == 2
    _one_line_error(capsys, r"is not valid UTF-8 text \(byte 0xe2 at position \d+\); pass "
                            r"--encoding with the file's encoding, e\.g\. --encoding latin-1")
    assert main(["balance", path, *FAST, "--encoding", "latin-1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["covariates"][0] == "âge"


def test_utf8_with_byte_order_mark(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    path = _write(tmp_path, frame, encoding="utf-8-sig")
    assert main(["balance", path, *FAST]) == 0


@pytest.mark.requires("pyarrow")
def test_parquet_in_and_out(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    out_file = tmp_path / "w.parquet"
    assert main(["balance", str(path), *FAST, "--weights-out", str(out_file)]) == 0
    assert "Treatment effect" in capsys.readouterr().out
    assert len(pd.read_parquet(out_file)) == len(frame)


def test_parquet_without_pyarrow_says_what_to_install(ks_csv, tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")

    def missing(*args, **kwargs):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", missing)
    assert main(["balance", str(path), *FAST]) == 2
    _one_line_error(capsys, r"reading Parquet files needs pyarrow: pip install pyarrow")


# ------------------------------------------------------------------ 7. output


def test_numbers_have_significant_digits_and_quantile_headers(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    # a covariate whose variance ratio is astronomically large
    frame = frame.assign(X4=np.where(frame["treat"] == 1, frame["X4"] * 1e11, frame["X4"]))
    path = _write(tmp_path, frame)
    assert main(["balance", path, *BASE, "--alpha", "0.1"]) == 0  # IPM: inexact balance
    out = capsys.readouterr().out
    table = out.split("Covariate balance")[1].split("Effective sample size")[0]
    assert re.search(r"\d\.\d{1,3}e\+\d\d", table)  # e.g. 1.016e+22
    assert not re.search(r"\d{8,}", table) and "-0 " not in table
    assert "[0.05  0.95]" in out and "[95%" not in out


def test_json_output_schema(ks_csv, tmp_path, capsys):
    path, frame = ks_csv
    out_file = tmp_path / "w.csv"
    assert main(["balance", str(path), *FAST, "--se", "bootstrap", "--n-bootstrap", "10",
                 "--format", "json", "--weights-out", str(out_file)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is one JSON document, nothing else
    assert set(doc) >= {"weightstats_version", "data", "method", "estimand", "effect",
                        "benchmark", "balance", "ess", "weights", "solver", "converged",
                        "warnings", "outputs"}
    effect = doc["effect"]
    lo, hi = effect["ci"]
    assert lo < effect["estimate"] < hi and effect["se"] > 0 and 0 <= effect["pvalue"] <= 1
    assert effect["se_method"] == "bootstrap" and effect["n_bootstrap"] == 10
    assert doc["data"] == {"source": str(path), "rows": 300, "treated": 144, "control": 156,
                           "treatment": "treat", "treated_label": 1, "outcome": "y",
                           "covariates": ["X1", "X2", "X3", "X4"], "sample_weight": None}
    assert doc["method"]["estimator"] == "EntropyBalancer" and doc["estimand"] == "ATT"
    assert doc["benchmark"] is None  # only on the built-in data
    assert [row["covariate"] for row in doc["balance"]] == ["X1", "X2", "X3", "X4"]
    assert {"smd_before", "smd_after", "variance_ratio_after", "ks_after"} <= set(
        doc["balance"][0])
    assert doc["ess"]["after"]["treated"] == pytest.approx(144)
    assert doc["weights"]["arms"]["control"]["n"] == 156
    assert {row["arm"] for row in doc["weights"]["largest"]} == {"control"}  # the reweighted arm
    assert doc["converged"] is True and doc["solver"]["converged"] is True
    assert doc["outputs"] == {"weights": str(out_file)}
    # the same numbers as the library
    est = EntropyBalancer().fit(frame[["X1", "X2", "X3", "X4"]], frame["treat"])
    assert effect["estimate"] == pytest.approx(est.estimate_effect(frame["y"]).effect)
    assert "NaN" not in captured.out and "Infinity" not in captured.out


def test_json_carries_warnings(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    path = _write(tmp_path, frame.assign(const=1.0))
    assert main(["balance", path, *BASE, "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert any("const" in w and "constant" in w for w in doc["warnings"])
    assert "warning: " in captured.err
