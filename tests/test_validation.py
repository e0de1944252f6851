import numpy as np
import pandas as pd
import pytest
from hypothesis import given

from weightstats.utils import (
    check_binary_treatment,
    check_finite_vector,
    check_group_sizes,
    check_sample_weight,
    fill_doc,
    import_optional,
    progress,
)

from .strategies import binary_treatments, permutations


@pytest.mark.parametrize(
    "treatment, pos_label, expected",
    [
        ([0, 1, 1], None, [False, True, True]),
        ([True, False], None, [True, False]),
        ([0.0, 1.0], None, [False, True]),
        (["ctl", "trt", "trt"], "trt", [False, True, True]),
        (pd.Series(pd.Categorical(["b", "a"])), "a", [False, True]),
        (np.array([[1], [0]]), None, [True, False]),
    ],
)
def test_binary_treatment_accepts_common_codings(treatment, pos_label, expected):
    treated, classes = check_binary_treatment(treatment, pos_label=pos_label)
    assert treated.tolist() == expected
    assert classes.shape == (2,)


@pytest.mark.parametrize(
    "treatment, kwargs, match",
    [
        ([1, 1, 1], {}, "exactly two distinct values"),
        ([0, 1, 2], {}, "exactly two distinct values"),
        (["a", "b"], {}, "pos_label="),
        ([0, 1], {"pos_label": 5}, "not one of"),
        ([0, np.nan, 1], {}, "missing"),
        ([], {}, "empty"),
        ([[0, 1], [1, 0]], {}, "1-d"),
        ([0, 1, 1], {"n_samples": 4}, "same length"),
    ],
)
def test_binary_treatment_errors(treatment, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_binary_treatment(treatment, **kwargs)


def test_label_lists_in_messages_show_plain_values():
    """Labels read from numpy arrays appear as 0, 1, 2, not np.int64(0)."""
    with pytest.raises(ValueError, match=r"got 3: \[0, 1, 2\]\.") as info:
        check_binary_treatment(np.array([0, 1, 2]))
    assert "np." not in str(info.value)
    with pytest.raises(ValueError, match=r"\['a', 'b'\]"):
        check_binary_treatment(np.array(["a", "b"]))


def test_length_mismatch_messages_do_not_blame_x():
    """A short outcome in an effect estimate is not reported as a problem with X."""
    from weightstats.balancing import weighted_effect

    y, t = np.arange(59.0), np.r_[np.zeros(30), np.ones(30)]
    with pytest.raises(ValueError) as info:
        weighted_effect(y, t, np.ones(60))
    assert "X" not in str(info.value)
    assert "treatment has 60 entries but the other inputs have 59" in str(info.value)


@given(t=binary_treatments(20), perm=permutations(20))
def test_binary_treatment_is_permutation_equivariant(t, perm):
    treated, _ = check_binary_treatment(t)
    permuted, _ = check_binary_treatment(t[perm])
    np.testing.assert_array_equal(permuted, treated[perm])


def test_sample_weight_validation():
    X = np.zeros((3, 1))
    np.testing.assert_array_equal(check_sample_weight(2.0, X), [2.0, 2.0, 2.0])
    for bad, match in [([1, -1, 1], "(?i)negative"), ([0, 0, 0], "sums to zero"),
                       ([1, np.nan, 1], "NaN"), ([1, 1], "one weight per row")]:
        with pytest.raises(ValueError, match=match):
            check_sample_weight(bad, X)
    assert check_sample_weight([0, 0, 0], X, allow_zero_sum=True).sum() == 0


def test_finite_vector_and_group_sizes():
    assert check_finite_vector([[1.0], [2.0]], "y").shape == (2,)
    with pytest.raises(ValueError, match="y contains infinity"):
        check_finite_vector([1.0, np.inf], "y")
    with pytest.raises(ValueError, match="numeric"):
        check_finite_vector(["a", "b"], "y")
    with pytest.raises(ValueError, match="same length"):
        check_finite_vector([1.0, 2.0], "y", n_samples=3)
    with pytest.raises(ValueError, match="treated group has 1 unit"):
        check_group_sizes(np.array([True, False, False]))
    with pytest.raises(ValueError, match="minimum"):
        check_group_sizes(np.array([True, False]), minimum=0)


def test_fill_doc_and_optional_imports(capsys):
    @fill_doc
    def f():
        """Doc.

        Parameters
        ----------
        {n_jobs}
        {unknown}
        """

    assert "Number of parallel workers" in f.__doc__
    assert "{unknown}" in f.__doc__  # unknown placeholders are left alone
    with pytest.raises(ImportError, match=r"pip install weightstats\[plot\]"):
        import_optional("matplotlib.not_a_module", purpose="love_plot")
    assert list(progress(range(3), verbose=0)) == [0, 1, 2]


def test_text_progress_reports_lines_with_remaining_time(capsys):
    from weightstats.utils._progress import _TextProgress

    assert list(_TextProgress(range(5), desc="boot", total=5)) == list(range(5))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("boot: 1/5 (20%), 0:00 elapsed, about 0:00 left")
    assert lines[-1] == "boot: 5/5 (100%), 0:00 elapsed"
    assert "\r" not in "".join(lines)


def test_progress_is_a_tqdm_bar_with_time_left_on_a_terminal(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = progress(range(3), verbose=1, desc="bootstrap")
    assert type(bar).__module__.startswith("tqdm")
    assert list(bar) == [0, 1, 2]
    assert "bootstrap" in terminal.getvalue()


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(capsys):
    # capsys's stderr is not a terminal: no tqdm redraws in captured output.
    assert list(progress(range(3), verbose=1, desc="work")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "work: 1/3" in err and "work: 3/3" in err and "\r" not in err
