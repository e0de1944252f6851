"""Golden M-estimation standard errors of inverse probability weighting (statsmodels).

statsmodels' ``TreatmentEffect.ipw`` estimates the logistic propensity model
and the weighted (normalised) potential-outcome means jointly as one exactly
identified GMM problem and reports HC0 sandwich standard errors: the stacked
estimating equations that ``PropensityBalancer.estimate_effect(se="m-estimation")``
implements independently. statsmodels clips the propensity scores to
[0.01, 0.99] inside its moment conditions, so the data sets are ones where no
score is that extreme (checked): Kang-Schafer n = 500 with the true
covariates Z (seed 3) and with the transformed covariates X (seed 4). The
covariates are standardised first (the logistic MLE and its sandwich do not
depend on that).

Run from the repository root: ``python tests/results/make_balancing_se_goldens.py``.
"""

import json
from pathlib import Path

import numpy as np
import statsmodels
import statsmodels.api as sm
from statsmodels.treatment.treatment_effects import TreatmentEffect

from weightstats.datasets import make_kang_schafer


def ipw(X, t, y):
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    exog = sm.add_constant(Z)
    select = sm.Logit(t, exog).fit(disp=0, tol=1e-12, maxiter=200)
    prob = select.predict()
    assert 0.01 < prob.min() and prob.max() < 0.99, "statsmodels would clip"
    te = TreatmentEffect(sm.OLS(y, exog), t, results_select=select)
    out = {}
    for estimand, group in (("ATE", "all"), ("ATT", 1), ("ATC", 0)):
        frame = te.ipw(effect_group=group).summary_frame()
        out[estimand] = {"effect": float(frame.iloc[0, 0]), "se": float(frame.iloc[0, 1])}
    return out


def main():
    goldens = {"statsmodels": statsmodels.__version__}
    for name, misspecified, seed in (("kang_schafer_Z_500_seed3", False, 3),
                                     ("kang_schafer_X_500_seed4", True, 4)):
        ks = make_kang_schafer(500, misspecified=misspecified, random_state=seed)
        goldens[name] = ipw(ks.data, ks.treatment, ks.target)
    path = Path(__file__).parent / "balancing_se_goldens.json"
    path.write_text(json.dumps(goldens, indent=2) + "\n")
    print(json.dumps(goldens, indent=2))


if __name__ == "__main__":
    main()
