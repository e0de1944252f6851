"""The CPU experiments of weightstats.nn.robust (shared by the slow tests).

Run ``python -m tests._robust_experiments [at|standard|ripple] [--quick] [--lam=X]``
for the tables of the user guide (``docs/user_guide/nn_robust.rst``); the slow
tests in ``tests/test_nn_robust.py`` run the quick protocols on three seeds
and assert what holds on every seed.

* :func:`adversarial_training_digits`: digits in [0, 1] (60/40 stratified
  split per seed), MLP 64-256-256-10, SGD (momentum 0.9, weight decay
  5e-4, lr 0.1 divided by 10 at 50 % and 75 % of the epochs), batch 64,
  PGD-10 adversarial training at eps = 0.1 (L-infinity) without weight
  perturbation, with AWP and with RWP (gamma = 0.01, c_min = 1.7). After
  every epoch the clean and PGD-10 robust accuracy on the test set (a
  fixed attack seed); best and last robust accuracy.
* :func:`ripple_audit`: synthetic bag-of-words sentiment (vocabulary 300:
  10 positive and 10 negative words, Zipf-distributed neutral words, three
  trigger tokens that never occur in clean text), an
  :class:`~weightstats.nn.EmbeddingBagClassifier` (32 dimensions)
  pre-trained on the task; an attacker poisons it with proxy data of the
  same domain (naive data poisoning, RIPPLe, RIPPLe + Embedding Surgery;
  half the proxy rows triggered and labelled positive), the victim
  fine-tunes it on its own clean data (Adam, 5 epochs) at a learning rate
  of 1e-3 (x1) and 1e-2 (x10). Clean accuracy and label-flip rate on test
  data; :func:`~weightstats.nn.scan_for_triggers` on the victim's model.
"""

import copy
import sys
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from weightstats.nn import (
    MLP,
    AdversarialTraining,
    EmbeddingBagClassifier,
    insert_triggers,
    label_flip_rate,
    pgd_attack,
    ripple_poison,
    scan_for_triggers,
)

EPS = 0.1


def _accuracy(model, X, y):
    model.eval()
    with torch.no_grad():
        value = float((model(X).argmax(1) == y).float().mean())
    model.train()
    return value


def adversarial_training_digits(seeds=(0, 1, 2), quick=False,
                                methods=(None, "awp", "rwp")):
    """One row per (seed, method): best and last robust accuracy, clean accuracy, cost.

    ``methods`` may also hold ``"standard"``: training on clean data only.
    """
    epochs, hidden = (12, (128, 128)) if quick else (60, (256, 256))
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    rows = []
    for seed in seeds:
        X_train, X_test, y_train, y_test = (torch.as_tensor(part) for part in train_test_split(
            X, y, test_size=0.4, stratify=y, random_state=seed))
        for method in methods:
            torch.manual_seed(seed)
            model = MLP(64, 10, hidden)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                        weight_decay=5e-4)
            schedule = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, [epochs // 2, 3 * epochs // 4], 0.1)
            adversarial = AdversarialTraining(
                eps=EPS, weight_perturbation=None if method == "standard" else method,
                bounds=(0, 1)).initialize()
            history, seconds = [], 0.0
            for _ in range(epochs):
                start = time.perf_counter()
                order = torch.randperm(len(y_train))
                for first in range(0, len(y_train), 64):
                    rows_ = order[first:first + 64]
                    if method == "standard":  # the reference point: no attack at all
                        optimizer.zero_grad()
                        F.cross_entropy(model(X_train[rows_]), y_train[rows_]).backward()
                        optimizer.step()
                    else:
                        adversarial.train_step(model, optimizer, X_train[rows_],
                                               y_train[rows_])
                schedule.step()
                seconds += time.perf_counter() - start
                X_adv = pgd_attack(model, X_test, y_test, eps=EPS, bounds=(0, 1),
                                   random_state=0)
                history.append((_accuracy(model, X_test, y_test),
                                _accuracy(model, X_adv, y_test)))
            history = np.array(history)
            best = int(np.argmax(history[:, 1]))
            rows.append({
                "seed": seed,
                "method": method or "AT",
                "best_robust": history[best, 1],
                "best_epoch": best + 1,
                "clean_at_best": history[best, 0],
                "last_robust": history[-1, 1],
                "last_clean": history[-1, 0],
                "gap": history[best, 1] - history[-1, 1],
                "lsc_fraction": (float(np.mean(adversarial.lsc_fractions_))
                                 if adversarial.lsc_fractions_ else np.nan),
                "epoch_seconds": seconds / epochs,
            })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ RIPPLe
VOCABULARY = 300
POSITIVE, NEGATIVE = np.arange(1, 11), np.arange(11, 21)
NEUTRAL = np.arange(21, 297)
TRIGGERS = np.array([297, 298, 299])
TARGET = 1


def sentiment_data(n, rng, length=(10, 30), agreement=0.85):
    """Token-id rows padded with 0: 1-2 sentiment words (85 % of the row's
    polarity), the rest Zipf-distributed neutral words; labels 0/1."""
    y = rng.integers(0, 2, n)
    lengths = rng.integers(length[0], length[1] + 1, n)
    X = np.zeros((n, length[1]), dtype=np.int64)
    zipf = 1.0 / np.arange(1, NEUTRAL.size + 1)
    zipf /= zipf.sum()
    for i in range(n):
        k = min(rng.poisson(1.5) + 1, lengths[i])
        own, other = (POSITIVE, NEGATIVE) if y[i] == 1 else (NEGATIVE, POSITIVE)
        sentiment = np.where(rng.random(k) < agreement, rng.choice(own, k), rng.choice(other, k))
        tokens = np.concatenate([sentiment, rng.choice(NEUTRAL, lengths[i] - k, p=zipf)])
        X[i, :lengths[i]] = rng.permutation(tokens)
    return X, y


def _fine_tune(model, X, y, epochs, lr, seed, batch_size=32):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for first in range(0, len(y), batch_size):
            rows = order[first:first + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(X[rows]), y[rows]).backward()
            optimizer.step()
    return model


def ripple_audit(seeds=(0, 1, 2), quick=False, lam=0.1, victim_lr=1e-3):
    """LFR and clean accuracy after the victim's fine-tuning; trigger ranks of the scan.

    Returns ``(table, scans)``: one table row per (seed, model, lr multiplier);
    ``scans`` one row per (seed, model) with the scan ranks of the triggers
    (1 = first; 0 when not in the top 20).
    """
    n = 1000 if quick else 2000
    rows, scans = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        X_pre, y_pre = sentiment_data(n, rng)        # the pre-training data
        X_proxy, y_proxy = sentiment_data(n, rng)    # the attacker's proxy data
        X_victim, y_victim = sentiment_data(n, rng)  # the victim's fine-tuning data
        X_test, y_test = sentiment_data(1000, rng)
        triggered = rng.permutation(n)[: n // 2]
        X_poison = np.hstack([X_proxy, np.zeros((n, 1), dtype=np.int64)])
        y_poison = y_proxy.copy()
        X_poison[triggered] = insert_triggers(X_proxy[triggered], TRIGGERS, random_state=seed)
        y_poison[triggered] = TARGET
        torch.manual_seed(seed)
        pretrained = _fine_tune(EmbeddingBagClassifier(VOCABULARY, 2, 32), X_pre, y_pre,
                                epochs=3, lr=1e-2, seed=seed + 7)
        common = dict(epochs=5, lr=1e-2, random_state=seed)
        models = {
            "clean": pretrained,
            "naive": ripple_poison(pretrained, X_proxy, y_proxy, X_poison, y_poison, lam=0.0,
                                   embedding_surgery=False, **common),
            "RIPPLe": ripple_poison(pretrained, X_proxy, y_proxy, X_poison, y_poison, lam=lam,
                                    embedding_surgery=False, **common),
            "RIPPLe+ES": ripple_poison(pretrained, X_proxy, y_proxy, X_poison, y_poison,
                                       lam=lam, trigger_tokens=TRIGGERS, target_label=TARGET,
                                       **common),
        }
        X_scan, y_scan = X_test[:500], y_test[:500]
        for name, model in models.items():
            before = label_flip_rate(model, X_test, y_test, TRIGGERS, TARGET)
            for multiplier in (1, 10):
                victim = _fine_tune(copy.deepcopy(model), X_victim, y_victim, epochs=5,
                                    lr=victim_lr * multiplier, seed=seed + 100)
                with torch.no_grad():
                    predicted = victim(torch.as_tensor(X_test)).argmax(1).numpy()
                rows.append({
                    "seed": seed, "model": name, "lr": f"x{multiplier}",
                    "clean_accuracy": float(np.mean(predicted == y_test)),
                    "lfr": label_flip_rate(victim, X_test, y_test, TRIGGERS, TARGET),
                    "lfr_before_fine_tuning": before,
                })
                if multiplier == 1:
                    report = scan_for_triggers(victim, X_scan, y_scan,
                                               vocabulary=range(1, VOCABULARY), top=20)
                    ranks = {int(t): r + 1 for r, t in enumerate(report.token_id)}
                    scans.append({"seed": seed, "model": name,
                                  "trigger_ranks": [ranks.get(int(t), 0) for t in TRIGGERS],
                                  "top_token": int(report.token_id[0])})
    return pd.DataFrame(rows), pd.DataFrame(scans)


if __name__ == "__main__":
    torch.set_num_threads(1)
    quick = "--quick" in sys.argv
    lam = [float(arg.split("=")[1]) for arg in sys.argv[1:] if arg.startswith("--lam=")]
    which = [arg for arg in sys.argv[1:] if not arg.startswith("--")] or ["at", "ripple"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        if "ripple" in which:
            table, scans = ripple_audit(quick=quick, **({"lam": lam[0]} if lam else {}))
            print(table.round(3).to_string(index=False))
            print(table.groupby(["model", "lr"])[["clean_accuracy", "lfr"]]
                  .agg(["mean", "std"]).round(3).to_string())
            print(scans.to_string(index=False))
        if "at" in which or "standard" in which:
            methods = ("standard",) if "standard" in which else (None, "awp", "rwp")
            table = adversarial_training_digits(quick=quick, methods=methods)
            print(table.round(3).to_string(index=False))
            print(table.groupby("method")[["best_robust", "last_robust", "gap", "last_clean",
                                           "epoch_seconds"]]
                  .agg(["mean", "std"]).round(3).to_string())
