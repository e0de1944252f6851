"""
Low-bit weights for a digits network: QAT with StatsQ and CGA, and SignRound
=============================================================================

Two ways to put a network's weights on a few bits, on the digits data:

* **quantisation-aware training**: keep training with 2-bit StatsQ weights
  (:func:`weightstats.nn.prepare_qat`), watch how often the integer
  weights oscillate (:class:`weightstats.nn.TrackOscillation`), and finish
  with confidence-guided annealing
  (:class:`weightstats.nn.ConfidenceGuidedAnnealing`), which freezes the
  weights far from a rounding boundary while the learning rate decays;
* **post-training rounding**: :class:`weightstats.nn.SignRound` learns how
  to round each weight from 128 calibration rows and packs the result into
  :class:`weightstats.nn.QuantLinear` layers; round-to-nearest
  (:func:`weightstats.nn.rtn_quantize`) is the baseline.

See the :ref:`user guide <nn_quantization>` for the rules and the
multi-seed tables.
"""

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from weightstats.nn import (
    ConfidenceGuidedAnnealing,
    NeuralNetClassifier,
    SignRound,
    TrackOscillation,
    prepare_qat,
    rtn_quantize,
)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)

# %%
# A full-precision network first (Adam, as in the paper's recipe).
net = NeuralNetClassifier(
    module__hidden_units=(128, 128, 128), optimizer=torch.optim.Adam, lr=1e-3, max_epochs=30,
    batch_size=64, random_state=0,
).fit(X_train, y_train)
print(f"full precision: {net.score(X_test, y_test):.4f}")

# %%
# Quantisation-aware training: the two hidden-to-hidden layers get 2-bit
# StatsQ weights (the first and the last layer stay in full precision), 20
# epochs of training, then 10 of confidence-guided annealing. The tracker
# records the share of weight updates that were oscillations in each epoch.
qat_model = prepare_qat(copy.deepcopy(net.module_), bits=2, method="statsq")
qat = NeuralNetClassifier(
    module=qat_model, optimizer=torch.optim.Adam, lr=1e-3, max_epochs=30, batch_size=64,
    random_state=0, train_split=predefined_split(Dataset(X_test, y_test)),
    callbacks=[TrackOscillation(), ConfidenceGuidedAnnealing(epochs=10)],
).fit(X_train, y_train)
history = qat.history
print(f"2-bit StatsQ after 20 epochs: {history[19, 'valid_acc']:.4f}, "
      f"after annealing: {history[-1, 'valid_acc']:.4f}")

# %%
# Post-training rounding of the full-precision network at 2, 3 and 4 bits.
bits_list = [2, 3, 4]
scores = {"round-to-nearest": [], "SignRound": []}
for bits in bits_list:
    rtn = rtn_quantize(net.module_, bits=bits)
    rounding = SignRound(bits=bits, random_state=0).fit(net.module_, X_train)
    signround = rounding.quantize(net.module_)
    with torch.no_grad():
        inputs = torch.as_tensor(X_test)
        for name, model in (("round-to-nearest", rtn), ("SignRound", signround)):
            scores[name].append(float((model(inputs).argmax(1).numpy() == y_test).mean()))
print(scores)

# %%
# Left: oscillation during QAT; it stops once the annealing freezes the
# confident weights (grey band). Right: test accuracy after rounding.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
epochs = np.arange(1, len(history) + 1)
left.plot(epochs, history[:, "oscillation_rate"], marker=".")
left.axvspan(20.5, 30.5, color="0.9", label="confidence-guided annealing")
left.set_xlabel("epoch")
left.set_ylabel("oscillations per weight update")
left.set_title("2-bit StatsQ training")
left.legend()
width = 0.38
for offset, (name, values) in zip((-width / 2, width / 2), scores.items()):
    right.bar(np.arange(3) + offset, values, width, label=name)
right.axhline(net.score(X_test, y_test), color="black", linestyle=":", label="full precision")
right.set_xticks(np.arange(3), [f"{b} bits" for b in bits_list])
right.set_ylim(0.85, 1.0)
right.set_ylabel("test accuracy")
right.set_title("post-training rounding")
right.legend(loc="lower right")
fig.tight_layout()
plt.show()
