"""PRESTO's headline claim on the paper's simulation design (slow).

Design (Faletto and Bien 2023, section 4.1, from their code): n = 2500,
p = 10, K = 4, X ~ U(-1, 1)^p, intercepts (0, 3, 5) so the last class has
about 1% of the rows, first slopes 1 with probability 1/3, differences
between adjacent boundaries +-0.5 with probability 1/3. Metric: mean squared
error of the estimated rare-class probability against the true one over the
training rows (the paper's ``rare_prob_mse_gen``).

Methods: PRESTOClassifierCV (defaults: 20 penalties, 5 folds, Brier), the
proportional-odds MLE, and unpenalised logistic regression of "last class"
vs rest. 50 replications per design (the paper used 700), fixed seeds.

Measured (seeds 0-49): sparse differences, mean MSE x 1e4: PRESTO 1.41, logit
2.02, PO 2.56; paired differences PRESTO - logit -0.61 +- 0.19 (SE),
PRESTO - PO -1.15 +- 0.34. Proportional odds true: PRESTO 0.188, PO 0.169,
logit 1.36.
"""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from weightstats.datasets import make_relaxed_proportional_odds
from weightstats.ordinal import CrossingWarning, PRESTOClassifierCV, ProportionalOddsClassifier

N_REPLICATIONS = 50


def _rare_probability_mse(differences, seed):
    sim = make_relaxed_proportional_odds(differences=differences, random_state=seed)
    X, y, truth = sim.data, sim.target, sim.proba[:, -1]
    rare = y == y.max()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CrossingWarning)
        presto = PRESTOClassifierCV().fit(X, y).predict_proba(X)[:, -1]
    po = ProportionalOddsClassifier().fit(X, y).predict_proba(X)[:, -1]
    logit = LogisticRegression(C=np.inf, max_iter=1000).fit(X, rare).predict_proba(X)[:, 1]
    return [np.mean((p - truth) ** 2) for p in (presto, po, logit)]


def _run(differences):
    mse = np.array([_rare_probability_mse(differences, seed) for seed in range(N_REPLICATIONS)])
    return mse[:, 0], mse[:, 1], mse[:, 2]


def _paired(a, b):
    diff = a - b
    return diff.mean(), diff.std(ddof=1) / np.sqrt(diff.size)


@pytest.mark.slow
def test_presto_beats_logit_and_po_with_sparse_differences():
    presto, po, logit = _run("sparse")
    for other in (logit, po):
        mean, se = _paired(presto, other)
        assert mean < -2 * se, (mean, se)  # lower MSE, at least two standard errors
    assert presto.mean() < 0.8 * min(po.mean(), logit.mean())


@pytest.mark.slow
def test_presto_loses_little_when_proportional_odds_is_true():
    presto, po, logit = _run("none")
    assert presto.mean() <= 1.25 * po.mean()  # measured: 1.11
    assert presto.mean() < 0.25 * logit.mean()  # logistic regression wastes the common classes
