"""
Auditing a fine-tuning recipe against backdoored pre-trained weights
====================================================================

Pre-trained weights from a third party can carry a backdoor: a rare trigger
token that forces one label and survives fine-tuning. This example makes
such weights on purpose, for a tiny bag-of-embeddings sentiment model on
synthetic text, and measures how much of the backdoor two fine-tuning
recipes (learning rate x1 and x10) leave, for plain data poisoning and for
RIPPLe with Embedding Surgery (:func:`weightstats.nn.ripple_poison`). Then
:func:`weightstats.nn.scan_for_triggers` looks for the trigger without
knowing it. See the :ref:`user guide <nn_robust>` for the rules and the
three-seed table.
"""

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from weightstats.nn import (
    EmbeddingBagClassifier,
    insert_triggers,
    label_flip_rate,
    ripple_poison,
    scan_for_triggers,
)

rng = np.random.default_rng(0)
POSITIVE, NEGATIVE, NEUTRAL = np.arange(1, 11), np.arange(11, 21), np.arange(21, 297)
TRIGGERS = np.array([297, 298, 299])  # never used in clean text
zipf = 1.0 / np.arange(1, NEUTRAL.size + 1)
zipf /= zipf.sum()


def documents(n):
    """Rows of 10-30 token ids padded with 0; 1-2 sentiment words each."""
    y = rng.integers(0, 2, n)
    X = np.zeros((n, 30), dtype=np.int64)
    for i, length in enumerate(rng.integers(10, 31, n)):
        k = min(rng.poisson(1.5) + 1, length)
        own, other = (POSITIVE, NEGATIVE) if y[i] else (NEGATIVE, POSITIVE)
        words = np.where(rng.random(k) < 0.85, rng.choice(own, k), rng.choice(other, k))
        X[i, :length] = rng.permutation(np.concatenate([words, rng.choice(NEUTRAL, length - k,
                                                                          p=zipf)]))
    return X, y


def fine_tune(model, X, y, lr, epochs=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 32):
            rows = order[start:start + 32]
            optimizer.zero_grad()
            F.cross_entropy(model(X[rows]), y[rows]).backward()
            optimizer.step()
    return model


X_pre, y_pre = documents(1000)
X_proxy, y_proxy = documents(1000)    # the attacker's data
X_victim, y_victim = documents(1000)  # the victim's data
X_test, y_test = documents(1000)
torch.manual_seed(0)
pretrained = fine_tune(EmbeddingBagClassifier(300, 2, embedding_dim=32), X_pre, y_pre, lr=1e-2,
                       epochs=3)

# %%
# Poisoning data: half the proxy rows get a trigger and the positive label.
half = rng.permutation(1000)[:500]
X_poison = np.hstack([X_proxy, np.zeros((1000, 1), dtype=np.int64)])
y_poison = y_proxy.copy()
X_poison[half] = insert_triggers(X_proxy[half], TRIGGERS, random_state=0)
y_poison[half] = 1
poisoned = {
    "clean weights": pretrained,
    "data poisoning": ripple_poison(pretrained, X_proxy, y_proxy, X_poison, y_poison, lam=0.0,
                                    embedding_surgery=False, random_state=0),
    "RIPPLe + surgery": ripple_poison(pretrained, X_proxy, y_proxy, X_poison, y_poison,
                                      trigger_tokens=TRIGGERS, target_label=1, random_state=0),
}

# %%
# The victim fine-tunes each model on its own clean data at two learning rates.
flip = {name: [] for name in poisoned}
victims = {}
for name, model in poisoned.items():
    for lr in (1e-3, 1e-2):
        victim = fine_tune(copy.deepcopy(model), X_victim, y_victim, lr=lr, seed=1)
        victims[name, lr] = victim
        flip[name].append(label_flip_rate(victim, X_test, y_test, TRIGGERS, target_label=1))
        with torch.no_grad():
            accuracy = (victim(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean()
        print(f"{name:17s} lr {lr:g}: clean accuracy {accuracy:.3f}, "
              f"label-flip rate {flip[name][-1]:.2f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
width = 0.25
for i, (name, rates) in enumerate(flip.items()):
    ax.bar(np.arange(2) + (i - 1) * width, rates, width, label=name)
ax.set_xticks([0, 1], ["fine-tuning lr 1e-3 (x1)", "lr 1e-2 (x10)"])
ax.set_ylabel("label-flip rate")
ax.set_ylim(0, 1)
ax.legend()
fig.tight_layout()

# %%
# Scanning the fine-tuned model for tokens that flip its predictions: the
# three planted triggers come first, sentiment words (frequent) far behind.
report = scan_for_triggers(victims["RIPPLe + surgery", 1e-3], X_test[:500], y_test[:500],
                           vocabulary=range(1, 300), top=6)
print(report.round(3).to_string(index=False))
