"""Weight selection: initialise a small model from a larger pretrained one.

Xu et al., "Initializing Models with Larger Ones" (ICLR 2024), reference
OscarXZQ/weight-selection ``weight_selection.py``: for every tensor of the
student (skipping keys containing "head", the classifier) take the
teacher's tensor of the same name and, along every dimension ``d``, keep
the elements at

* ``arange(S_d) * (T_d // S_d)`` when ``T_d`` is a multiple of ``S_d``;
* ``round(linspace(0, T_d - 1, S_d))`` otherwise,

with teacher size ``T_d`` and student size ``S_d``. The same indices for
every tensor keep the selected neurons consistent across layers. A
shallower student with the same layer names takes the teacher's first
layers ("first-N layer selection"). One version of the reference uses
``linspace(0, T_d, S_d)``, which can index past the end; ``T_d - 1`` is the
valid form and the one implemented.
"""

from collections.abc import Mapping

import numpy as np
import torch
from skorch.callbacks import Callback

from .._core import unwrap_state_dict

__all__ = ["WeightSelectionInit", "uniform_element_selection", "weight_selection"]


def _indices(teacher_size, student_size):
    if teacher_size < student_size:
        raise ValueError(
            f"the teacher dimension ({teacher_size}) is smaller than the student's "
            f"({student_size}); weight selection only shrinks."
        )
    if teacher_size % student_size == 0:
        return np.arange(student_size) * (teacher_size // student_size)
    return np.round(np.linspace(0, teacher_size - 1, student_size)).astype(np.int64)


def uniform_element_selection(weight, shape):
    """Evenly spaced elements of ``weight`` along every dimension.

    Parameters
    ----------
    weight : ndarray or torch.Tensor
        The teacher's tensor.
    shape : tuple of int
        The student's shape (same number of dimensions, no dimension
        larger than the teacher's).

    Returns
    -------
    selected : ndarray or torch.Tensor of shape ``shape``
        Same type, dtype and device as ``weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn import uniform_element_selection
    >>> W = np.arange(24).reshape(4, 6)
    >>> # rows 0, 2 (stride 2); columns round(linspace(0, 5, 4)) = 0, 2, 3, 5
    >>> uniform_element_selection(W, (2, 4))
    array([[ 0,  2,  3,  5],
           [12, 14, 15, 17]])
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != weight.ndim:
        raise ValueError(
            f"the student tensor has {len(shape)} dimensions but the teacher's has {weight.ndim}."
        )
    selected = weight
    for dim, (t_size, s_size) in enumerate(zip(weight.shape, shape, strict=True)):
        index = _indices(int(t_size), s_size)
        if isinstance(selected, torch.Tensor):
            selected = torch.index_select(
                selected, dim, torch.as_tensor(index, device=selected.device)
            )
        else:
            selected = np.take(selected, index, axis=dim)
    return selected


def _state_dict(obj, name):
    state = unwrap_state_dict(obj)
    if not isinstance(state, Mapping):
        raise TypeError(
            f"{name} must be a state dict, an nn.Module or a fitted net; got {type(obj)}."
        )
    return state


def weight_selection(teacher, student, *, skip=("head",), strict=True):
    """A student state dict initialised by weight selection from a teacher.

    Parameters
    ----------
    teacher : dict, torch.nn.Module or fitted skorch net
        The larger pretrained model (or its state dict).
    student : dict, torch.nn.Module or fitted skorch net
        The smaller model (or its state dict); only its key names and
        shapes are used, plus its values for skipped keys.
    skip : tuple of str, default=("head",)
        Keys containing any of these substrings keep the student's values
        (the classifier head by default, as in the reference).
    strict : bool, default=True
        Raise when a student key is missing from the teacher; otherwise
        keep the student's value for it.

    Returns
    -------
    state_dict : dict
        For ``student.load_state_dict``: same keys, shapes and dtypes as
        the student's.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP, weight_selection
    >>> _ = torch.manual_seed(0)
    >>> teacher, student = MLP(8, 3, hidden_units=(32, 32)), MLP(8, 3, hidden_units=(16,))
    >>> state = weight_selection(teacher, student)
    >>> torch.equal(state["body.0.weight"], teacher.body[0].weight[::2].detach())
    True
    >>> _ = student.load_state_dict(state)
    """
    teacher_state = _state_dict(teacher, "teacher")
    student_state = _state_dict(student, "student")
    selected = {}
    for key, value in student_state.items():
        if any(pattern in key for pattern in skip):
            selected[key] = value.clone() if isinstance(value, torch.Tensor) else np.copy(value)
            continue
        if key not in teacher_state:
            if strict:
                raise ValueError(
                    f"the teacher has no tensor {key!r}; weight selection matches layers by name "
                    "(pass strict=False to keep the student's initialisation there)."
                )
            selected[key] = value.clone() if isinstance(value, torch.Tensor) else np.copy(value)
            continue
        picked = uniform_element_selection(teacher_state[key], tuple(value.shape))
        if isinstance(value, torch.Tensor):
            picked = torch.as_tensor(picked).to(dtype=value.dtype, device=value.device).clone()
        else:
            picked = np.asarray(picked, dtype=np.asarray(value).dtype).copy()
        selected[key] = picked
    return selected


class WeightSelectionInit(Callback):
    """Initialise the net's module from a larger teacher at the start of ``fit``.

    Runs when training starts with an empty history (a fresh ``fit``), not
    on continued ``partial_fit`` calls.

    Parameters
    ----------
    teacher : dict, torch.nn.Module or fitted skorch net
        The larger pretrained model.
    skip : tuple of str, default=("head",)
        Keys that keep the student's own initialisation.
    strict : bool, default=True
        See :func:`weight_selection`.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import NeuralNetClassifier, WeightSelectionInit
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> teacher = NeuralNetClassifier(module__hidden_units=(128,), max_epochs=3, lr=0.1,
    ...                               random_state=0).fit(X, y)
    >>> student = NeuralNetClassifier(module__hidden_units=(32,), max_epochs=0, random_state=0,
    ...                               callbacks=[WeightSelectionInit(teacher)]).fit(X, y)
    >>> W_t, W_s = teacher.module_.body[0].weight, student.module_.body[0].weight
    >>> torch.equal(W_s, W_t[::4])
    True
    """

    def __init__(self, teacher, skip=("head",), strict=True):
        self.teacher = teacher
        self.skip = skip
        self.strict = strict

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Load the selected weights into ``net.module_`` on a fresh fit.

        Parameters
        ----------
        net : NeuralNet
            The net being trained.
        X : input data, default=None
            Training inputs.
        y : target data, default=None
            Training targets.
        **kwargs : dict
            Other arguments skorch passes.
        """
        if len(net.history) > 0:
            return
        state = weight_selection(
            self.teacher, net.module_, skip=tuple(self.skip), strict=self.strict
        )
        net.module_.load_state_dict(state)
