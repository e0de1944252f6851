"""``weightstats balance``: balancing weights, balance table and effect estimate from a data file.

Without a file it runs on the LaLonde data shipped with weightstats (the 185
NSW treated men against 15,992 CPS controls, outcome ``re78``), the classic
benchmark where the experimental answer is known ($1,794).

Everything the user can get wrong is checked here, in the command's own
vocabulary (its flags), before any fitting starts; library messages that still
reach the user are re-worded to name the flags (:func:`cli_words`).
"""

import codecs
import copy
import difflib
import json
import math
import re
import sys
import warnings
from pathlib import Path

from .._cli_io import (
    PARQUET_SUFFIXES,
    Progress,
    atomic_output,
    check_input_file,
    check_output_file,
    fmt,
    plain,
    plain_repr,
    read_table,
    same_file,
    to_json,
)
from ..cli import CLIError

__all__ = ["cli_words", "register", "run"]

_METHODS = {"ipm": "IPMBalancer", "entropy": "EntropyBalancer", "propensity": "PropensityBalancer"}
_PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")

# Library (API) vocabulary -> the flags of this command, for messages that reach the user.
_API_WORDS = [
    (re.compile(r"\bpos_label=\{?[^ ]*?\}? to\b"), "--treated-label to"),
    (re.compile(r"\bpos_label\b=?"), "--treated-label "),
    (re.compile(r"\bn_resamples\b=?"), "--n-bootstrap "),
    (re.compile(r"\bn_bootstrap\b=?"), "--n-bootstrap "),
    (re.compile(r"\bse=['\"]bootstrap['\"]"), "--se bootstrap"),
    (re.compile(r"\bse=['\"]sandwich['\"]"), "--se sandwich"),
    (re.compile(r"\bmax_weight\b=?"), "--max-weight "),
    (re.compile(r"\bl2_penalty\b=?"), "--l2-penalty "),
    (re.compile(r"\bbandwidth=(?=\S)"), "--bandwidth "),
    (re.compile(r"\bipm=(?=\S)"), "--ipm "),
    (re.compile(r"\baugment=(?=\S)"), "--augment "),
    (re.compile(r"\bestimand=(?=\S)"), "--estimand "),
    (re.compile(r"\bn_jobs\b=?"), "--n-jobs "),
    (re.compile(r"\b(?:use|try) IPMBalancer\b"), "use --method ipm"),
    (re.compile(r"\bor IPMBalancer\b"), "or --method ipm"),
]


def cli_words(message):
    """Re-word a library message so that it names this command's flags.

    Parameters
    ----------
    message : str
        A message written for Python users (``pos_label=``, ``se='bootstrap'``).

    Returns
    -------
    message : str
        The same message in command-line terms (``--treated-label``,
        ``--se bootstrap``).

    Examples
    --------
    >>> from weightstats.balancing._cli import cli_words
    >>> cli_words("use se='bootstrap' to include the uncertainty of the weights.")
    'use --se bootstrap to include the uncertainty of the weights.'
    >>> cli_words("n_resamples must be an integer >= 2; got 1.")
    '--n-bootstrap must be an integer >= 2; got 1.'
    """
    for pattern, replacement in _API_WORDS:
        message = pattern.sub(replacement, message)
    return re.sub(r" {2,}", " ", message).replace(" ;", ";").replace(" .", ".")


def register(subparsers):
    """Add the ``balance`` subcommand to the ``weightstats`` parser."""
    parser = subparsers.add_parser(
        "balance",
        help="balancing weights, balance diagnostics and a treatment-effect estimate",
        description=(
            "Estimate balancing weights for a binary treatment, then print the treatment "
            "effect with its confidence interval, the covariate balance before and after "
            "weighting, the effective sample sizes and the solver status. Without FILE, runs "
            "on the LaLonde data shipped with weightstats (NSW treated vs CPS controls, "
            "outcome re78), where the experimental answer is known: an ATT of $1,794."
        ),
        epilog=(
            "Exit status: 0 on success, 2 for a usage or input error (one line on stderr), "
            "130 when interrupted. Progress goes to stderr when it is a terminal (or with "
            "--verbose); results go to stdout."
        ),
    )
    parser.add_argument(
        "input", nargs="?", metavar="FILE",
        help="CSV (any delimiter, see --sep) or Parquet (.parquet) file with one row per unit; "
             "default: the built-in LaLonde data",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--treatment", metavar="COL",
                      help="treatment column, with two values (default on the built-in data: "
                           "treat)")
    data.add_argument("--outcome", metavar="COL",
                      help="numeric outcome column (default on the built-in data: re78)")
    data.add_argument("--covariates", metavar="COLS",
                      help="comma-separated numeric covariate columns (default: every other "
                           "column)")
    data.add_argument("--treated-label", metavar="VALUE",
                      help="value of the treatment column that marks treated units; needed "
                           "unless the values are 0/1, true/false or two numbers (then the "
                           "larger is treated)")
    data.add_argument("--sample-weight", metavar="COL",
                      help="column of non-negative frequency or survey weights of the units")
    data.add_argument("--id-column", metavar="COL",
                      help="column that identifies the units; copied into --weights-out "
                           "(default: the row number)")
    data.add_argument("--sep", metavar="SEP",
                      help="CSV delimiter, e.g. ',', ';', 'tab' (default: detected from the "
                           "file)")
    data.add_argument("--encoding", metavar="NAME",
                      help="text encoding of the CSV, e.g. latin-1 or cp1252 (default: UTF-8)")

    method = parser.add_argument_group("weighting method")
    method.add_argument("--method", choices=list(_METHODS), default="ipm",
                        help="ipm: IPMBalancer, minimises an integral probability metric "
                             "(default); entropy: EntropyBalancer, exact mean balance; "
                             "propensity: PropensityBalancer, inverse probability weighting")
    method.add_argument("--estimand", choices=["ATT", "ATC", "ATE"], default="ATT",
                        help="effect on the treated (default), on the controls, or on everyone")
    method.add_argument("--ipm", metavar="NAME",
                        help="discriminator class of --method ipm: mmd, energy, moments, "
                             "sigmoid (default: IPMBalancer's, mmd)")
    method.add_argument("--bandwidth", metavar="H",
                        help="Gaussian kernel bandwidth of --ipm mmd on standardised "
                             "covariates: a number or 'median' (default: IPMBalancer's)")
    method.add_argument("--max-weight", type=float, metavar="W",
                        help="upper bound on each unit's weight (--method ipm)")
    method.add_argument("--l2-penalty", type=float, metavar="LAMBDA",
                        help="adds LAMBDA / ESS to the IPM objective: more stable weights for a "
                             "little less balance (--method ipm; default: IPMBalancer's)")

    inference = parser.add_argument_group("inference")
    inference.add_argument("--se", choices=["sandwich", "bootstrap"], default="sandwich",
                           help="sandwich: weights treated as fixed (default, fast); bootstrap: "
                                "weights re-estimated on every resample")
    inference.add_argument("--n-bootstrap", type=int, default=200, metavar="B",
                           help="bootstrap resamples for --se bootstrap (default 200)")
    inference.add_argument("--augment", choices=["ols"],
                           help="add a linear outcome regression (doubly robust estimate)")
    inference.add_argument("--alpha", type=float, default=0.05,
                           help="one minus the confidence level (default 0.05: 95%% intervals)")
    inference.add_argument("--seed", type=int, default=0,
                           help="random seed of the bootstrap and of randomised solvers "
                                "(default 0)")
    inference.add_argument("--n-jobs", type=int, metavar="N",
                           help="parallel workers for the bootstrap and threads for the solver "
                                "(-1: all cores)")

    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=["text", "json"], default="text",
                        help="text: tables for people (default); json: one JSON object on "
                             "stdout for pipelines")
    output.add_argument("--weights-out", metavar="FILE",
                        help="write one weight per input row to this CSV (or .parquet) file")
    output.add_argument("--plot", metavar="FILE",
                        help="save a love plot (absolute SMD before and after weighting) to this "
                             ".png, .pdf or .svg file; needs matplotlib")
    output.add_argument("--force", action="store_true",
                        help="overwrite existing --weights-out and --plot files (never the "
                             "input file)")
    output.add_argument("-v", "--verbose", action="count", default=0,
                        help="report progress on stderr even when it is not a terminal")
    output.add_argument("-q", "--quiet", action="store_true",
                        help="no progress on stderr (errors and warnings still appear)")
    parser.set_defaults(func=run)
    return parser


# ---------------------------------------------------------------------- checks


def _check_options(args):
    """Everything that can be checked without the data, before any work starts."""
    if not 0 < args.alpha < 1:
        raise CLIError(f"--alpha must be between 0 and 1 (0.05 gives 95% intervals); "
                       f"got {args.alpha:g}.")
    if args.n_bootstrap < 2:
        raise CLIError(f"--n-bootstrap must be at least 2; got {args.n_bootstrap}.")
    if args.n_jobs == 0:
        raise CLIError("--n-jobs must be a positive number of workers or -1 (all cores); got 0.")
    if args.max_weight is not None and not args.max_weight > 0:
        raise CLIError(f"--max-weight must be positive; got {args.max_weight:g}.")
    if args.l2_penalty is not None and not args.l2_penalty >= 0:
        raise CLIError(f"--l2-penalty must be zero or positive; got {args.l2_penalty:g}.")
    if args.method != "ipm":
        for flag, value in (("--ipm", args.ipm), ("--bandwidth", args.bandwidth),
                            ("--max-weight", args.max_weight),
                            ("--l2-penalty", args.l2_penalty)):
            if value is not None:
                raise CLIError(f"{flag} applies to --method ipm only (got --method "
                               f"{args.method}).")
    if args.bandwidth is not None and args.bandwidth != "median":
        try:
            bandwidth = float(args.bandwidth)
        except ValueError:
            bandwidth = -1.0
        if not bandwidth > 0 or not math.isfinite(bandwidth):
            raise CLIError(f"--bandwidth must be a positive number or 'median'; got "
                           f"{args.bandwidth!r}.")
    if args.ipm is not None and args.ipm != "mmd" and args.bandwidth is not None:
        raise CLIError(f"--bandwidth applies to --ipm mmd only (got --ipm {args.ipm}).")
    if args.encoding is not None:
        try:
            codecs.lookup(args.encoding)
        except LookupError:
            raise CLIError(f"unknown --encoding {args.encoding!r}; use a Python codec name such "
                           "as utf-8, latin-1 or cp1252.") from None
    if args.input is not None:
        check_input_file(args.input)
    outputs = [(flag, value) for flag, value in (("--weights-out", args.weights_out),
                                                 ("--plot", args.plot)) if value]
    for flag, value in outputs:
        check_output_file(flag, value, input_path=args.input, force=args.force)
    if len(outputs) == 2 and same_file(args.weights_out, args.plot):
        raise CLIError("--weights-out and --plot name the same file; give two file names.")
    if args.plot:
        if Path(args.plot).suffix.lower() not in _PLOT_FORMATS:
            raise CLIError(f"--plot {args.plot}: use a .png, .pdf or .svg file name.")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CLIError("--plot needs matplotlib: pip install matplotlib (or install "
                           "weightstats with the 'plot' extra).") from None


# ---------------------------------------------------------------------- data


def _column(frame, name, flag):
    if name in frame.columns:
        return name
    columns = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(name, columns, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
    raise CLIError(f"{flag} {name!r} is not a column of the data (columns: {shown}).{hint}")


def _load(args):
    """The data and the roles of its columns, checked in the command's terms."""
    import numpy as np
    import pandas as pd

    builtin = args.input is None
    if builtin:
        from ..datasets import load_lalonde

        data = load_lalonde(controls="cps")
        frame = data.frame
        treatment_col = args.treatment or "treat"
        outcome_col = args.outcome or "re78"
        default_covariates = [c for c in data.feature_names if c not in (treatment_col,
                                                                          outcome_col)]
        source = "LaLonde: NSW treated vs CPS controls (built-in, load_lalonde(controls='cps'))"
    else:
        frame = read_table(args.input, sep=args.sep, encoding=args.encoding)
        frame.columns = [str(c) for c in frame.columns]
        if args.treatment is None or args.outcome is None:
            raise CLIError("a data file needs --treatment and --outcome to name its columns.")
        treatment_col, outcome_col = args.treatment, args.outcome
        default_covariates = None
        source = args.input
    if len(frame) == 0:
        raise CLIError(f"{source} has a header but no data rows.")
    roles = {"--treatment": treatment_col, "--outcome": outcome_col,
             "--sample-weight": args.sample_weight, "--id-column": args.id_column}
    roles = {flag: name for flag, name in roles.items() if name is not None}
    for flag, name in roles.items():
        _column(frame, name, flag)
    if args.covariates:
        covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
        repeated = sorted({c for c in covariates if covariates.count(c) > 1})
        if repeated:
            raise CLIError(f"--covariates names {', '.join(map(repr, repeated))} more than once.")
        for name in covariates:
            _column(frame, name, "--covariates")
    elif default_covariates is not None:
        covariates = default_covariates
    else:
        covariates = [c for c in frame.columns if c not in roles.values()]
    _check_roles(roles, covariates)
    if not covariates:
        raise CLIError("no covariate columns are left; name them with --covariates.")
    for name in covariates:
        if not (pd.api.types.is_numeric_dtype(frame[name])
                or pd.api.types.is_bool_dtype(frame[name])):
            hint = "" if args.covariates else "; choose the numeric ones with --covariates"
            raise CLIError(f"covariate {name!r} is not numeric (e.g. {_example(frame[name])}): "
                           f"encode it as numbers first{hint}.")
    for flag in ("--outcome", "--sample-weight"):
        name = roles.get(flag)
        if name is not None and not pd.api.types.is_numeric_dtype(frame[name]):
            raise CLIError(f"{flag} column {name!r} is not numeric (e.g. "
                           f"{_example(frame[name])}).")
    checked = [*covariates, treatment_col, outcome_col]
    if args.sample_weight:
        checked.append(args.sample_weight)
    missing = frame[checked].isna()
    if missing.to_numpy().any():
        cols = [c for c in checked if missing[c].any()]
        rows = np.flatnonzero(missing.any(axis=1).to_numpy())
        raise CLIError(f"{rows.size} row(s) have missing values (in {', '.join(cols)}; the "
                       f"first is data row {rows[0] + 1}); drop or impute them first.")
    numeric = [*covariates, outcome_col] + ([args.sample_weight] if args.sample_weight else [])
    for name in numeric:
        if not np.all(np.isfinite(frame[name].to_numpy(dtype=float))):
            raise CLIError(f"column {name!r} contains infinite values.")
    sample_weight = None
    if args.sample_weight:
        sample_weight = frame[args.sample_weight].to_numpy(dtype=float)
        if np.any(sample_weight < 0) or not np.any(sample_weight > 0):
            raise CLIError(f"--sample-weight column {args.sample_weight!r} must be non-negative "
                           "with some positive values.")
    treated, treated_label = _treated(frame[treatment_col], treatment_col, args.treated_label)
    for group, mask in (("treated", treated), ("control", ~treated)):
        size = int(mask.sum()) if sample_weight is None else int(np.sum(sample_weight[mask] > 0))
        if size < 2:
            raise CLIError(f"the {group} group has {size} unit(s); balancing needs at least 2 "
                           "in each group.")
    X = frame[covariates].astype(float)
    if args.id_column:  # label the rows of the weight summary by the user's ids
        X.index = pd.Index(frame[args.id_column], name=args.id_column)
    return {
        "frame": frame, "X": X, "treated": treated,
        "y": frame[outcome_col].to_numpy(dtype=float), "sample_weight": sample_weight,
        "treatment": treatment_col, "treated_label": treated_label, "outcome": outcome_col,
        "covariates": covariates, "source": source, "builtin": builtin,
    }


def _check_roles(roles, covariates):
    seen = {}
    for flag, name in roles.items():
        if name in seen:
            raise CLIError(f"column {name!r} is given as both {seen[name]} and {flag}; each "
                           "column can play one role only.")
        seen[name] = flag
    for name in covariates:
        if name in seen:
            raise CLIError(f"column {name!r} is the {seen[name]} column and cannot also be a "
                           "covariate; remove it from --covariates.")


def _same_number(value, text):
    """Whether ``text`` names the number ``value`` ("1" for 1.0, "2.50" for 2.5)."""
    try:
        return float(plain(value)) == float(text)
    except (TypeError, ValueError):
        return False


def _example(series):
    values = series.dropna()
    return repr(values.iloc[0]) if len(values) else "empty"


def _treated(series, name, treated_label):
    """Boolean treated indicator and the label that marks the treated units."""
    import pandas as pd

    values = pd.unique(series.dropna())
    shown = ", ".join(plain_repr(v) for v in sorted(values, key=str)[:5])
    more = ", ..." if len(values) > 5 else ""
    if len(values) != 2:
        raise CLIError(f"--treatment column {name!r} must have exactly two values (treated and "
                       f"control); it has {len(values)}: {shown}{more}.")
    if treated_label is not None:
        matches = [v for v in values if str(v) == treated_label or _same_number(v, treated_label)]
        if not matches:
            raise CLIError(f"--treated-label {treated_label!r} is not a value of the "
                           f"--treatment column {name!r} (its values: {shown}).")
        label = matches[0]
    elif series.dtype.kind == "b" or set(values.tolist()) <= {0, 1}:
        label = True if series.dtype.kind == "b" else 1
    elif pd.api.types.is_numeric_dtype(series):
        label = max(values)  # two numbers: the larger marks the treated, as in scikit-learn
    else:
        raise CLIError(f"--treatment column {name!r} has the values {shown}; pass "
                       f"--treated-label to say which marks the treated units (e.g. "
                       f"--treated-label {plain_repr(sorted(values, key=str)[-1])}).")
    return (series == label).to_numpy(dtype=bool), plain(label)


# ---------------------------------------------------------------------- fitting


def _estimator(args, verbose):
    from . import EntropyBalancer, IPMBalancer, PropensityBalancer, available_ipms

    common = dict(estimand=args.estimand, n_jobs=args.n_jobs, random_state=args.seed,
                  verbose=verbose)
    if args.method == "entropy":
        return EntropyBalancer(**common)
    if args.method == "propensity":
        return PropensityBalancer(**common)
    params = {}
    if args.ipm is not None:
        if args.ipm not in available_ipms():
            raise CLIError(f"unknown --ipm {args.ipm!r}; choose one of "
                           f"{', '.join(available_ipms())}.")
        params["ipm"] = args.ipm
    if args.bandwidth is not None:
        params["bandwidth"] = "median" if args.bandwidth == "median" else float(args.bandwidth)
    if args.max_weight is not None:
        params["max_weight"] = args.max_weight
    if args.l2_penalty is not None:
        params["l2_penalty"] = args.l2_penalty
    return IPMBalancer(**params, **common)


def _describe_method(estimator):
    if type(estimator).__name__ != "IPMBalancer":
        return type(estimator).__name__
    params = estimator.get_params()
    bits = [f"ipm={params['ipm']}"]
    if params["ipm"] == "mmd":
        bits.append(f"bandwidth={params['bandwidth']}")
    if params.get("l2_penalty"):
        bits.append(f"l2_penalty={params['l2_penalty']:g}")
    if params.get("max_weight") is not None:
        bits.append(f"max_weight={params['max_weight']:g}")
    return f"IPMBalancer ({', '.join(bits)})"


def run(args):
    """Run ``weightstats balance``; returns the exit status."""
    from . import WeightSummary
    from ._base import arms_for_estimand

    _check_options(args)
    progress = Progress(verbose=args.verbose, quiet=args.quiet)
    progress(f"reading {args.input or 'the built-in LaLonde data'}")
    data = _load(args)
    n_treated, n_control = int(data["treated"].sum()), int((~data["treated"]).sum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator = _estimator(args, verbose=int(progress.enabled))
            arms = {"ATT": f"{n_control:,} control units towards {n_treated:,} treated",
                    "ATC": f"{n_treated:,} treated units towards {n_control:,} controls",
                    "ATE": f"both groups ({n_treated + n_control:,} units) towards everyone"}
            progress(f"fitting weights: {_describe_method(estimator)}, "
                     f"{arms[args.estimand]}")
            estimator.fit(data["X"], data["treated"].astype(int),
                          sample_weight=data["sample_weight"])
            progress(f"weights done: {_solver_line(estimator)}")
            if args.se == "bootstrap":
                progress(f"bootstrap: refitting the weights on {args.n_bootstrap} resamples")
            result = estimator.estimate_effect(data["y"], se=args.se,
                                               n_bootstrap=args.n_bootstrap,
                                               augment=args.augment)
            table = estimator.balance_table()
            weights = estimator.weight_summary()
            # the units kept at weight 1 (the treated for ATT) have no largest weights to show
            reweighted = [arm for arm, _, _ in arms_for_estimand(data["treated"], args.estimand)]
            weights = WeightSummary(weights.table,
                                    weights.largest[weights.largest["arm"].isin(reweighted)])
        except ValueError as exc:
            raise CLIError(cli_words(str(exc))) from None
    progress("done")
    messages = _warning_messages(caught)
    report = _Report(args, data, estimator, result, table, weights, messages)
    written = _write_outputs(args, data, estimator, table)
    if args.format == "json":
        print(json.dumps(to_json(report.as_dict(written)), indent=2))
    else:
        print(report.as_text(written))
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    return 0


def _warning_messages(caught):
    messages = []
    for w in caught:
        if issubclass(w.category, (UserWarning, RuntimeWarning)):
            message = cli_words(str(w.message))
            if message not in messages:
                messages.append(message)
    return messages


# ---------------------------------------------------------------------- output


class _Report:
    """The results of one run, as text for people or a dict for JSON."""

    def __init__(self, args, data, estimator, result, table, weights, warnings_):
        self.args, self.data, self.estimator = args, data, estimator
        self.result, self.table, self.weights = result, table, weights
        self.warnings = warnings_

    def _benchmark(self):
        """The experimental answer and the naive difference on the built-in data."""
        import numpy as np

        if not (self.data["builtin"] and self.data["outcome"] == "re78"
                and self.data["treatment"] == "treat" and self.args.estimand == "ATT"):
            return None
        from ..datasets import load_lalonde

        y, treated = self.data["y"], self.data["treated"]
        return {"experimental_att": float(load_lalonde().experimental_att),
                "naive_difference": float(np.mean(y[treated]) - np.mean(y[~treated]))}

    def _weighted_arms(self):
        return {"ATT": ("control",), "ATC": ("treated",),
                "ATE": ("treated", "control")}[self.args.estimand]

    def _summary(self):
        result = copy.copy(self.result)
        weighted = self._weighted_arms()
        result.info = {
            (f"{key} (weighted)" if key.startswith("mean outcome ")
             and key.rsplit(" ", 1)[-1] in weighted else key): value
            for key, value in result.info.items()
        }
        result.notes = [cli_words(note) for note in result.notes]
        return result.summary(alpha=self.args.alpha)

    def as_text(self, written):
        data, args = self.data, self.args
        label = data["treated_label"]
        lines = [
            f"data: {data['source']}",
            f"units: {int(data['treated'].sum()):,} treated ({data['treatment']} = "
            f"{plain_repr(label)}), {int((~data['treated']).sum()):,} control; outcome: "
            f"{data['outcome']}",
            f"covariates: {', '.join(data['covariates'])}",
        ]
        if data["sample_weight"] is not None:
            lines.append(f"sample weights: {args.sample_weight}")
        lines += ["", str(self._summary())]
        bench = self._benchmark()
        if bench is not None:
            lo, hi = self.result.conf_int(args.alpha)
            level = f"{100 * (1 - args.alpha):g}%"
            lines += [
                "",
                "Benchmark on the built-in data (ATT on 1978 earnings, US dollars):",
                f"  this estimate            {fmt(self.result.effect):>8}   ({level} CI "
                f"{fmt(lo)} to {fmt(hi)})",
                f"  experimental benchmark   {fmt(bench['experimental_att']):>8}   "
                "(NSW treated vs randomised NSW controls)",
                f"  naive difference         {fmt(bench['naive_difference']):>8}   "
                "(NSW treated vs CPS controls, unweighted)",
            ]
        lines += ["", f"Covariate balance ({args.estimand}; SMD = standardised mean difference, "
                      "VR = variance ratio, KS = Kolmogorov-Smirnov):"]
        shown = self.table[["smd_before", "smd_after", "variance_ratio_before",
                            "variance_ratio_after", "ks_before", "ks_after"]].copy()
        shown.columns = ["SMD before", "SMD after", "VR before", "VR after", "KS before",
                         "KS after"]
        lines.append(shown.to_string(float_format=fmt))
        ess = self.table.attrs["ess"]
        lines += [
            "",
            "Effective sample size: "
            f"treated {fmt(ess['before']['treated'], '.1f')} -> "
            f"{fmt(ess['after']['treated'], '.1f')}, "
            f"control {fmt(ess['before']['control'], '.1f')} -> "
            f"{fmt(ess['after']['control'], '.1f')}",
        ]
        rows = f"--id-column {self.args.id_column}" if self.args.id_column else "row number"
        lines += ["", f"Weights of each group (largest: by {rows}):", str(self.weights), ""]
        lines.append(f"Solver: {_solver_line(self.estimator)}")
        for flag, path in written.items():
            lines.append(f"{'weights' if flag == 'weights' else 'love plot'} written to {path}")
        return "\n".join(lines)

    def as_dict(self, written):
        from .. import __version__

        args, data, result = self.args, self.data, self.result
        frame = result.summary_frame(alpha=args.alpha).iloc[0]
        weighted = self._weighted_arms()
        return {
            "weightstats_version": __version__,
            "data": {
                "source": data["source"], "rows": int(len(data["frame"])),
                "treated": int(data["treated"].sum()),
                "control": int((~data["treated"]).sum()),
                "treatment": data["treatment"], "treated_label": data["treated_label"],
                "outcome": data["outcome"], "covariates": list(data["covariates"]),
                "sample_weight": args.sample_weight,
            },
            "method": {"name": args.method, "estimator": type(self.estimator).__name__,
                       "params": {k: v for k, v in self.estimator.get_params().items()
                                  if k not in ("verbose", "n_jobs", "pos_label")}},
            "estimand": args.estimand,
            "effect": {
                "estimate": float(result.effect), "se": float(result.se),
                "se_method": args.se, "statistic": float(frame["statistic"]),
                "pvalue": float(frame["pvalue"]), "alpha": args.alpha,
                "ci": [float(frame["ci_lower"]), float(frame["ci_upper"])],
                "mean_treated": result.mean_treated, "mean_control": result.mean_control,
                "weighted_means": list(weighted),
                "augment": args.augment,
                "n_bootstrap": args.n_bootstrap if args.se == "bootstrap" else None,
                "notes": [cli_words(n) for n in result.notes],
            },
            "benchmark": self._benchmark(),
            "balance": [{"covariate": str(name), **{k: float(v) for k, v in row.items()}}
                        for name, row in self.table.iterrows()],
            "ess": self.table.attrs["ess"],
            "weights": self.weights.to_dict(),
            "solver": self.estimator.solver_info_,
            "converged": bool(self.estimator.solver_info_.get("converged", True)),
            "warnings": list(self.warnings),
            "outputs": {k: str(v) for k, v in written.items()},
        }


def _write_outputs(args, data, estimator, table):
    import pandas as pd

    written = {}
    if args.weights_out:
        ids = (data["frame"][args.id_column].to_numpy() if args.id_column
               else range(len(data["frame"])))
        out = pd.DataFrame({args.id_column or "row": ids,
                            "treated": data["treated"].astype(int),
                            "weight": estimator.weights_})
        with atomic_output(args.weights_out, force=args.force) as tmp:
            if Path(args.weights_out).suffix.lower() in PARQUET_SUFFIXES:
                try:
                    out.to_parquet(tmp, index=False)
                except ImportError:
                    raise CLIError("writing Parquet files needs pyarrow: pip install "
                                   "pyarrow.") from None
            else:
                out.to_csv(tmp, index=False)
        written["weights"] = args.weights_out
    if args.plot:
        import matplotlib.pyplot as plt

        from . import love_plot

        ax = love_plot(table)
        ax.figure.tight_layout()
        with atomic_output(args.plot, force=args.force) as tmp:
            ax.figure.savefig(tmp, dpi=120, format=Path(args.plot).suffix[1:].lower())
        plt.close(ax.figure)
        written["plot"] = args.plot
    return written


def _solver_line(estimator):
    info = estimator.solver_info_
    if isinstance(info.get("treated"), dict):
        arms = [dict(info[a], arm=a) for a in ("treated", "control")]
    else:
        arms = [dict(info, arm=info.get("arm", "propensity model"))]
    parts = []
    for a in arms:
        status = "converged" if a.get("converged", True) else "NOT converged"
        label = a["arm"] if a["arm"] == "propensity model" else f"{a['arm']} arm"
        bits = [f"{label}: {a.get('solver', type(estimator).__name__)}"]
        if a.get("representation"):
            rep = a["representation"]
            if a.get("rank"):
                rep += f", rank {a['rank']}"
            bits.append(f"[{rep}]")
        if a.get("iterations") is not None:
            bits.append(f"{a['iterations']} iterations")
        bits.append(status)
        if a.get("relative_gap") is not None:
            bits.append(f"relative gap {a['relative_gap']:.1e}")
        if a.get("kkt_residual") is not None:
            bits.append(f"KKT residual {a['kkt_residual']:.1e}")
        if a.get("max_imbalance") is not None:
            bits.append(f"max imbalance {a['max_imbalance']:.1e}")
        parts.append(", ".join(bits))
    return "; ".join(parts)
