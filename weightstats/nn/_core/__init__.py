"""Shared machinery of :mod:`weightstats.nn` (private; methods build on it).

* :mod:`._net`: the net base classes :class:`NeuralNetClassifier` and
  :class:`NeuralNetRegressor` (public through :mod:`weightstats.nn`); a
  method subclasses one and overrides ``get_sample_losses``,
  ``adjust_logits``, ``train_step`` or ``_train``.
* :mod:`._data`: input checks (:func:`check_finite_tensor` for tensors a
  method receives), weights travelling with the batch, whole-batch
  fetching, per-row entries of split datasets.
* :mod:`._seeding`: the forked, seeded torch RNG of every fit.
* :mod:`._persistence`: pickle/skops state as NumPy arrays.
* :mod:`._schedule`: mutable seeded samplers and the "epochs since fit"
  counter of callbacks (:class:`EpochsSinceFit`, which knows
  ``partial_fit(..., epochs=n)``).
* :mod:`._state_dict`: unwrapping nets and modules to state dicts, NumPy
  round trips safe for bfloat16.
* :mod:`._docs`: the shared parameter text of the nets' docstrings.
"""

from ._data import (
    DATA_KEY,
    WEIGHT_KEY,
    batch_features,
    batch_sample_weight,
    check_finite_tensor,
    dataset_column,
    first_output,
)
from ._docs import fill_net_doc
from ._net import NeuralNetClassifier, NeuralNetRegressor
from ._schedule import EpochsSinceFit, SeededSampler, attach_sampler
from ._seeding import torch_random_context
from ._state_dict import numpy_tree, tensor_like, tensor_tree, to_numpy, unwrap_state_dict

__all__ = [
    "DATA_KEY",
    "WEIGHT_KEY",
    "EpochsSinceFit",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "SeededSampler",
    "attach_sampler",
    "batch_features",
    "batch_sample_weight",
    "check_finite_tensor",
    "dataset_column",
    "fill_net_doc",
    "first_output",
    "numpy_tree",
    "tensor_like",
    "tensor_tree",
    "to_numpy",
    "torch_random_context",
    "unwrap_state_dict",
]
