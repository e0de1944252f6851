"""
Equilibrium propagation without weight symmetry: Jacobian homeostasis
=====================================================================

A recurrent network with independent forward and feedback weights settles
to a fixed point; holomorphic equilibrium propagation estimates the loss
gradient from a few nudged fixed points instead of backpropagation. Its
estimate is exact only when the network's Jacobian is symmetric. Here
:class:`weightstats.nn.EquilibriumPropagationClassifier` trains on digits
with and without Jacobian homeostasis; after every epoch we record the
Jacobian symmetry ``s / (s + a)`` (:func:`weightstats.nn.jacobian_asymmetry`)
and the cosine between the hEP gradient and the true gradient (recurrent
backpropagation). See the :ref:`user guide <nn_learning_rules>` for the rule
and the three-seed tables.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from weightstats.nn import EquilibriumPropagationClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    (X / 16).astype(np.float32), y, test_size=0.4, stratify=y, random_state=0)
X_train, y_train = X_train[:500], y_train[:500]


class GradientCosine(Callback):
    """hEP gradient against the true gradient on 256 training rows, per epoch."""

    def on_epoch_end(self, net, **kwargs):
        X_probe = torch.as_tensor(X_train[:256])
        y_probe = torch.as_tensor(y_train[:256])

        def gradient(**rule):
            net.module_.zero_grad()
            net.module_.accumulate_gradients(X_probe, y_probe, **rule)
            flat = torch.cat([p.grad.flatten() for name, p in net.module_.named_parameters()
                              if not name.startswith("readout")])
            net.module_.zero_grad()
            return flat

        hep = gradient(rule="hep", beta=net.beta, n_nudges=net.n_nudges)
        true = gradient(rule="rbp", n_nudged_steps=2000)
        net.history.record("cosine", float(hep @ true / (hep.norm() * true.norm())))


nets = {}
for homeostasis in (0.0, 0.5):
    nets[homeostasis] = EquilibriumPropagationClassifier(
        hidden_layer_sizes=(32,), homeostasis=homeostasis, optimizer=torch.optim.Adam, lr=3e-3,
        batch_size=32, max_epochs=5, random_state=0, callbacks=[GradientCosine()],
    ).fit(X_train, y_train)
    print(f"homeostasis {homeostasis}: test accuracy {nets[homeostasis].score(X_test, y_test):.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
for homeostasis, net in nets.items():
    epochs = net.history[:, "epoch"]
    label = f"homeostasis {homeostasis}"
    axes[0].plot(epochs, net.history[:, "jacobian_symmetry"], marker="o", label=label)
    axes[1].plot(epochs, net.history[:, "cosine"], marker="o", label=label)
axes[0].set(xlabel="epoch", ylabel="s / (s + a)", title="Jacobian symmetry")
axes[1].set(xlabel="epoch", ylabel="cosine", title="hEP vs true gradient")
axes[1].legend()
fig.tight_layout()
