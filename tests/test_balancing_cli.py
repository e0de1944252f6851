"""``weightstats balance``: the README's main command."""

import re

import numpy as np
import pandas as pd
import pytest

from weightstats.balancing import balance_table
from weightstats.cli import main
from weightstats.datasets import load_lalonde, make_kang_schafer


@pytest.fixture
def ks_csv(tmp_path):
    ks = make_kang_schafer(300, random_state=0, as_frame=True)
    frame = ks.data.assign(treat=ks.treatment, y=ks.target)
    path = tmp_path / "ks.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.mark.slow
def test_default_run_on_lalonde_recovers_the_experimental_effect(tmp_path, capsys):
    """Acceptance: NSW treated vs CPS controls, ATT by MMD weights: every |SMD| < 0.1
    after weighting and the 95% interval contains the experimental $1,794."""
    weights_file = tmp_path / "w.csv"
    assert main(["balance", "--weights-out", str(weights_file)]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^ATT\s+(\S+)\s+(\S+)\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s*$", out, re.MULTILINE)
    effect, lo, hi = float(row.group(1)), float(row.group(3)), float(row.group(4))
    assert lo < 1794.34 < hi and lo < effect < hi
    assert "converged" in out and "NOT converged" not in out
    weights = pd.read_csv(weights_file)["weight"].to_numpy()
    data = load_lalonde(controls="cps")
    table = balance_table(data.data, data.treatment, weights)
    assert table["smd_after"].abs().max() < 0.1
    assert table["smd_before"].abs().max() > 1.0


def test_csv_run_prints_effect_balance_and_solver(ks_csv, tmp_path, capsys):
    path, frame = ks_csv
    png = tmp_path / "love.png"
    args = ["balance", str(path), "--treatment", "treat", "--outcome", "y",
            "--covariates", "X1,X2,X3,X4", "--method", "entropy", "--weights-out",
            str(tmp_path / "w.csv")]
    try:
        import matplotlib  # noqa: F401

        args += ["--plot", str(png)]
    except ImportError:
        png = None
    assert main(args) == 0
    out = capsys.readouterr().out
    for piece in ("Treatment effect (ATT)", "SMD before", "Effective sample size", "Solver:"):
        assert piece in out
    written = pd.read_csv(tmp_path / "w.csv")
    assert len(written) == len(frame)
    assert written.loc[written.treated == 0, "weight"].sum() == pytest.approx(frame.treat.sum())
    if png is not None:
        assert png.stat().st_size > 1000


@pytest.mark.parametrize("extra", [["--method", "ipm", "--ipm", "energy"],
                                   ["--l2-penalty", "1e-5", "--max-weight", "5"],
                                   ["--method", "propensity", "--estimand", "ATE"],
                                   ["--se", "bootstrap", "--n-bootstrap", "20", "--method",
                                    "entropy", "--augment", "ols"]])
def test_csv_run_options(ks_csv, extra, capsys):
    path, _ = ks_csv
    assert main(["balance", str(path), "--treatment", "treat", "--outcome", "y", *extra]) == 0
    assert "Treatment effect" in capsys.readouterr().out


def _bad(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("case, pattern", [
    ("missing_column", r"column 'dose' is not in the data"),
    ("non_binary", r"exactly two distinct values"),
    ("nan", r"missing values"),
    ("small_group", r"at least 2"),
    ("text_covariate", r"is not numeric"),
    ("no_columns", r"needs --treatment and --outcome"),
    ("string_labels", r"pos_label|--treated-label"),
])
def test_bad_csvs_exit_2_with_one_sentence(ks_csv, tmp_path, capsys, case, pattern):
    _, frame = ks_csv
    frame = frame.copy()
    args = ["--treatment", "treat", "--outcome", "y"]
    if case == "missing_column":
        args = ["--treatment", "dose", "--outcome", "y"]
    elif case == "non_binary":
        frame["treat"] = np.arange(len(frame)) % 3
    elif case == "nan":
        frame.loc[3, "X2"] = np.nan
    elif case == "small_group":
        frame["treat"] = 0
        frame.loc[0, "treat"] = 1
    elif case == "text_covariate":
        frame["X1"] = "a"
    elif case == "no_columns":
        args = []
    elif case == "string_labels":
        frame["treat"] = np.where(frame["treat"] == 1, "yes", "no")
    status = main(["balance", _bad(tmp_path, frame), *args])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("weightstats balance: error: ")
    assert re.search(pattern, err), err


def test_treated_label_selects_the_treated_group(ks_csv, tmp_path, capsys):
    _, frame = ks_csv
    frame = frame.assign(treat=np.where(frame["treat"] == 1, "yes", "no"))
    path = _bad(tmp_path, frame, "labels.csv")
    assert main(["balance", path, "--treatment", "treat", "--outcome", "y", "--method",
                 "entropy", "--treated-label", "yes"]) == 0
    assert "Treatment effect" in capsys.readouterr().out
    assert main(["balance", path, "--treatment", "treat", "--outcome", "y",
                 "--treated-label", "maybe"]) == 2
