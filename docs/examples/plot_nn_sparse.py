"""
Sparse training on digits: sparse momentum and ST-3
===================================================

Two ways to end up with a network that keeps 10 % of its weights.

* :class:`weightstats.nn.SparseMomentum` trains sparse from the start: the
  number of active weights never changes, but at every epoch end the
  layers' shares move towards the layers whose active weights have the
  largest mean ``|momentum|``, and inside each layer the smallest weights are
  replaced by the zero positions with the largest ``|momentum|``.
* :class:`weightstats.nn.SoftThresholdSparsity` (ST-3) trains dense weights
  and soft-thresholds them in the forward pass, the sparsity ramped up
  cubically; the threshold is one quantile of all weights, so layers end
  with different sparsities.

Both leave ``torch.nn.utils.prune`` masks (ST-3 after ``finalize``), which
:func:`weightstats.nn.sparsity_report` reads. See the
:ref:`user guide <nn_sparse>` for the rules and the multi-seed tables.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from weightstats.nn import NeuralNetClassifier, SoftThresholdSparsity, SparseMomentum, sparsity_report

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X, X_test, y, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
epochs = 20


def net(callback):
    return NeuralNetClassifier(
        module__hidden_units=(300, 100), lr=0.1, optimizer__momentum=0.9,
        optimizer__nesterov=True, optimizer__weight_decay=5e-4, max_epochs=epochs,
        batch_size=100, callbacks=[callback], random_state=0,
    ).fit(X, y)


sparse = SparseMomentum(density=0.1)
sm_net = net(sparse)
st3 = SoftThresholdSparsity(final_sparsity=0.9, ramp=(0.05, 0.65))
st3_net = net(st3)
for name, fitted in [("sparse momentum", sm_net), ("ST-3", st3_net)]:
    print(f"{name}: test accuracy {np.mean(fitted.predict(X_test) == y_test):.3f}")
sparsity_report(st3_net)

# %%
# Left: the density of each layer of the sparse-momentum network after every
# epoch end (the total stays at 10 %). Right: ST-3's target sparsity over the
# epochs, and where each layer ended.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for layer in sparse.layers_:
    left.plot([r["epoch"] + 1 for r in sparse.history_], [r["density"][layer] for r in sparse.history_],
              marker="o", markersize=3, label=layer)
left.axhline(0.1, color="grey", linestyle=":", label="overall")
left.set(xlabel="epoch", ylabel="density", title="Sparse momentum: layer densities", yscale="log")
left.legend()
right.plot(range(1, epochs + 1), st3_net.history[:, "sparsity"], marker="o", markersize=3, label="target")
report = sparsity_report(st3_net).set_index("layer")
for layer in st3.layers_:
    right.axhline(1 - report.loc[layer, "density"], linestyle="--", linewidth=1, label=f"{layer} at the end")
right.set(xlabel="epoch", ylabel="sparsity", title="ST-3: cubic ramp to 90 %")
right.legend()
plt.show()
