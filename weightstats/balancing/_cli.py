"""``weightstats balance``: balancing weights, balance table and effect estimate from a CSV.

Without a CSV it runs on the LaLonde data shipped with weightstats (the 185
NSW treated men against 15,992 CPS controls, outcome ``re78``), the classic
benchmark where the experimental answer is known ($1,794).
"""

import sys
import time
import warnings

__all__ = ["register"]

_METHODS = ("ipm", "entropy", "propensity")


def register(subparsers):
    """Add the ``balance`` subcommand to the ``weightstats`` parser."""
    parser = subparsers.add_parser(
        "balance",
        help="balancing weights, balance diagnostics and a treatment-effect estimate",
        description=(
            "Estimate balancing weights for a binary treatment, print the treatment effect "
            "with its confidence interval, the covariate balance before and after weighting, "
            "the effective sample sizes and the solver status. Without CSV, runs on the "
            "LaLonde data (NSW treated vs CPS controls, outcome re78; experimental ATT $1,794)."
        ),
    )
    parser.add_argument("csv", nargs="?", help="input CSV with one row per unit")
    parser.add_argument("--treatment", help="treatment column (two values)")
    parser.add_argument("--outcome", help="outcome column")
    parser.add_argument(
        "--covariates", help="comma-separated covariate columns (default: all other columns)"
    )
    parser.add_argument("--treated-label",
                        help="value of the treatment column that marks treated units "
                             "(needed unless the values are 0/1, booleans or two numbers)")
    parser.add_argument("--method", choices=_METHODS, default="ipm",
                        help="ipm: IPMBalancer (default); entropy: EntropyBalancer; "
                             "propensity: PropensityBalancer")
    parser.add_argument("--estimand", choices=["ATT", "ATC", "ATE"], default="ATT")
    parser.add_argument("--ipm", default="mmd",
                        help="discriminator class of --method ipm: mmd (default), energy, "
                             "moments, sigmoid")
    parser.add_argument("--bandwidth", default="10",
                        help="Gaussian bandwidth of --ipm mmd on standardised covariates "
                             "(default 10, or 'median')")
    parser.add_argument("--max-weight", type=float, default=None,
                        help="upper bound on each unit's weight (--method ipm)")
    parser.add_argument("--l2-penalty", type=float, default=0.0,
                        help="add this / ESS to the IPM objective: more stable weights for a "
                             "little less balance (--method ipm; default 0)")
    parser.add_argument("--se", choices=["sandwich", "bootstrap"], default="sandwich",
                        help="sandwich (weights treated as fixed; default) or bootstrap "
                             "(weights re-estimated on each resample)")
    parser.add_argument("--n-bootstrap", type=int, default=200, help="bootstrap resamples")
    parser.add_argument("--augment", choices=["ols"], default=None,
                        help="add an outcome regression (doubly robust estimate)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="one minus the confidence level (default 0.05)")
    parser.add_argument("--weights-out", metavar="FILE",
                        help="write one weight per input row to this CSV")
    parser.add_argument("--plot", metavar="PNG", help="save a love plot to this file")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel workers/threads")
    parser.add_argument("--seed", type=int, default=0, help="random seed (bootstrap)")
    parser.set_defaults(func=run)


def _load(args):
    import numpy as np
    import pandas as pd

    from ..cli import CLIError

    if args.csv is None:
        from ..datasets import load_lalonde

        data = load_lalonde(controls="cps")
        frame = data.frame
        treatment_col = args.treatment or "treat"
        outcome_col = args.outcome or "re78"
        covariates = args.covariates.split(",") if args.covariates else list(data.feature_names)
        source = "LaLonde: NSW treated vs CPS controls (load_lalonde(controls='cps'))"
    else:
        frame = pd.read_csv(args.csv)
        if args.treatment is None or args.outcome is None:
            raise CLIError("a CSV needs --treatment and --outcome to name its columns.")
        treatment_col, outcome_col = args.treatment, args.outcome
        if args.covariates:
            covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
        else:
            covariates = [c for c in frame.columns if c not in (treatment_col, outcome_col)]
        source = args.csv
    for col in [treatment_col, outcome_col, *covariates]:
        if col not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:12]))
            raise CLIError(f"column {col!r} is not in the data (columns: {shown}).")
    if not covariates:
        raise CLIError("no covariate columns: pass --covariates.")
    for col in covariates + [outcome_col]:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            raise CLIError(f"column {col!r} is not numeric; encode it as numbers first.")
    X = frame[covariates]
    missing = X.isna().any(axis=1) | frame[outcome_col].isna() | frame[treatment_col].isna()
    if missing.any():
        cols = [c for c in covariates + [outcome_col, treatment_col] if frame[c].isna().any()]
        raise CLIError(
            f"{int(missing.sum())} row(s) have missing values (in {', '.join(cols)}); "
            "drop or impute them first."
        )
    if not np.all(np.isfinite(X.to_numpy(dtype=float))):
        raise CLIError("the covariates contain infinite values.")
    treatment = frame[treatment_col]
    pos_label = None
    if args.treated_label is not None:
        values = treatment.unique()
        matches = [v for v in values if str(v) == args.treated_label]
        if not matches:
            raise CLIError(f"--treated-label {args.treated_label!r} is not a value of "
                           f"{treatment_col!r}.")
        pos_label = matches[0]
    return frame, X, treatment, frame[outcome_col].to_numpy(dtype=float), pos_label, source


def _estimator(args, pos_label):
    from ..cli import CLIError
    from . import EntropyBalancer, IPMBalancer, PropensityBalancer

    common = dict(estimand=args.estimand, pos_label=pos_label, n_jobs=args.n_jobs,
                  random_state=args.seed)
    if args.method == "entropy":
        return EntropyBalancer(**common)
    if args.method == "propensity":
        return PropensityBalancer(**common)
    if args.bandwidth == "median":
        bandwidth = "median"
    else:
        try:
            bandwidth = float(args.bandwidth)
        except ValueError:
            raise CLIError(f"--bandwidth must be a number or 'median'; got {args.bandwidth!r}.")
    return IPMBalancer(ipm=args.ipm, bandwidth=bandwidth, max_weight=args.max_weight,
                       l2_penalty=args.l2_penalty, **common)


def run(args):
    """Run ``weightstats balance``; returns the exit status."""
    import pandas as pd

    from ..cli import CLIError

    start = time.perf_counter()
    frame, X, treatment, y, pos_label, source = _load(args)
    estimator = _estimator(args, pos_label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X, treatment)
        result = estimator.estimate_effect(y, se=args.se, n_bootstrap=args.n_bootstrap,
                                           augment=args.augment)
    table = estimator.balance_table()
    print(f"data: {source}")
    print(f"units: {int(estimator.treated_.sum())} treated, "
          f"{int((~estimator.treated_).sum())} control; covariates: {', '.join(X.columns)}")
    print()
    print(result.summary(alpha=args.alpha))
    print()
    print(f"Covariate balance ({args.estimand}; SMD = standardised mean difference, "
          "VR = variance ratio, KS = Kolmogorov-Smirnov):")
    shown = table[["smd_before", "smd_after", "variance_ratio_before", "variance_ratio_after",
                   "ks_before", "ks_after"]]
    shown.columns = ["SMD before", "SMD after", "VR before", "VR after", "KS before", "KS after"]
    with pd.option_context("display.width", 120):
        print(shown.to_string(float_format=lambda v: f"{v:.3f}".replace("-0.000", "0.000")))
    ess = table.attrs["ess"]
    print()
    print("Effective sample size: "
          f"treated {ess['before']['treated']:.1f} -> {ess['after']['treated']:.1f}, "
          f"control {ess['before']['control']:.1f} -> {ess['after']['control']:.1f}")
    print(f"Solver: {_solver_line(estimator)}")
    for w in caught:
        if issubclass(w.category, (UserWarning, RuntimeWarning)):
            print(f"warning: {w.message}", file=sys.stderr)
    if args.weights_out:
        out = pd.DataFrame({"row": range(len(frame)), "treated": estimator.treated_.astype(int),
                            "weight": estimator.weights_})
        out.to_csv(args.weights_out, index=False)
        print(f"weights written to {args.weights_out}")
    if args.plot:
        try:
            from . import love_plot

            ax = love_plot(table)
        except ImportError as exc:
            raise CLIError(str(exc)) from exc
        ax.figure.tight_layout()
        ax.figure.savefig(args.plot, dpi=120)
        print(f"love plot written to {args.plot}")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return 0


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

