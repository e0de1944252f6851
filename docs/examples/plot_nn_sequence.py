"""
A self-modifying layer that recalls, and attention heads shared across layers
=============================================================================

Two tools for weights inside sequence models (see the
:ref:`user guide <nn_sequence>` for the rules and the three-seed tables):

* :class:`weightstats.nn.SRWMLayer`, a weight matrix that rewrites itself
  as it reads, learns associative recall: it sees 8 (key, value) pairs and
  must answer the value of a key shown again. With self-modification
  switched off the same layer has no memory and stays at chance.
* :func:`weightstats.nn.share_heads` ties attention heads of a small
  :class:`weightstats.nn.TinyTransformer` to the most similar head of an
  earlier layer (DirectShare), which costs less accuracy than tying random
  heads.

One seed and shorter training than the user guide, so that this page builds
in well under a minute on one CPU core.
"""

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weightstats.nn import SRWMLayer, TinyTransformer, head_similarity, share_heads

torch.set_num_threads(1)


def recall_batch(n, generator, n_pairs=8, n_keys=16, n_values=16):
    """One-hot (key, value) steps with distinct keys, then one of the keys."""
    keys = torch.rand(n, n_keys, generator=generator).argsort(1)[:, :n_pairs]
    values = torch.randint(0, n_values, (n, n_pairs), generator=generator)
    which = torch.randint(0, n_pairs, (n,), generator=generator)
    X = torch.zeros(n, n_pairs + 1, n_keys + n_values)
    rows, steps = torch.arange(n)[:, None], torch.arange(n_pairs)[None, :]
    X[rows, steps, keys] = 1
    X[rows, steps, n_keys + values] = 1
    X[torch.arange(n), n_pairs, keys[torch.arange(n), which]] = 1
    return X, values[torch.arange(n), which]


class RecallNet(nn.Module):
    def __init__(self, self_modify=True):
        super().__init__()
        self.inp = nn.Linear(32, 64)
        self.srwm = SRWMLayer(64, n_heads=4, self_modify=self_modify)
        self.head = nn.Linear(64, 16)

    def forward(self, X):  # (batch, time, features) -> logits of the last step
        return self.head(self.srwm(self.inp(X))[:, -1])


# %%
# Associative recall
# ------------------
# Adam at 1e-2 on batches of 128 fresh sequences; the curve is the accuracy
# on each training batch (chance: 1/16).
curves = {}
for self_modify in (True, False):
    torch.manual_seed(0)
    model = RecallNet(self_modify)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    accuracy = []
    for step in range(300):
        X, y = recall_batch(128, generator)
        logits = model(X)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracy.append((logits.argmax(1) == y).float().mean().item())
    curves[f"self_modify={self_modify}"] = np.convolve(accuracy, np.ones(10) / 10, "valid")

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, curve in curves.items():
    ax.plot(curve, label=name)
ax.axhline(1 / 16, color="grey", linestyle=":", label="chance")
ax.set_xlabel("training step")
ax.set_ylabel("batch accuracy (running mean of 10)")
ax.legend()
fig.tight_layout()

# %%
# Sharing attention heads
# -----------------------
# A transformer of 6 layers with 4 heads each learns to reverse 8 tokens
# over a 16-token vocabulary.


def reversal_batch(n, generator):
    X = torch.randint(0, 16, (n, 8), generator=generator)
    return X, X.flip(1)


torch.manual_seed(0)
base = TinyTransformer(d_model=32, n_layers=6, n_heads=4)
optimizer = torch.optim.AdamW(base.parameters(), lr=3e-3, weight_decay=0.1)
generator = torch.Generator().manual_seed(0)
for step in range(400):
    X, y = reversal_batch(128, generator)
    loss = F.cross_entropy(base(X).transpose(1, 2), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

X_test, y_test = reversal_batch(2000, torch.Generator().manual_seed(999))


def token_accuracy(model):
    with torch.no_grad():
        return (model(X_test).argmax(-1) == y_test).float().mean().item()


print(f"token accuracy before sharing: {token_accuracy(base):.3f}")

# %%
# Every head of layers 1 to 5 has a best match among the heads of earlier
# layers (cosine of the flattened query and key weights). The heads with the
# most similar match are shared first.
similarity = head_similarity(base)
print(similarity.sort_values("cosine", ascending=False).head())

# %%
# Share 0 to 50 % of the heads, by similarity or at random (mean of five
# draws), without any retraining.
rates = [0.0, 0.1, 0.25, 0.375, 0.5]
by_similarity, at_random = [], []
for rate in rates:
    by_similarity.append(token_accuracy(share_heads(copy.deepcopy(base), rate)))
    at_random.append(np.mean([
        token_accuracy(share_heads(copy.deepcopy(base), rate, pairing="random", random_state=r))
        for r in range(5)
    ]))
shared, report = share_heads(copy.deepcopy(base), 0.5, return_report=True)
print(report)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(rates, by_similarity, "o-", label="similarity (DirectShare)")
ax.plot(rates, at_random, "s-", label="random pairing")
ax.set_xlabel("share of heads tied to an earlier head")
ax.set_ylabel("token accuracy")
ax.legend()
fig.tight_layout()
plt.show()
