"""Model Stock on torch state dicts (Jang, Yun & Han, ECCV 2024).

The merging rule lives in :func:`weightstats.reweighting.model_stock`
(NumPy, float64 arithmetic); this wrapper accepts torch tensors and state
dicts and gives back the same type, dtypes and devices.
"""

from collections import OrderedDict
from collections.abc import Mapping

from ...reweighting import model_stock as _model_stock_numpy
from .._core import tensor_like, to_numpy, unwrap_state_dict

__all__ = ["model_stock"]


def model_stock(base, finetuned, *, filter_wise=False, return_ratio=False):
    """Merge fine-tuned models with Model Stock.

    Per tensor: ``cos`` is the (mean pairwise) cosine between the fine-tuned
    offsets ``w_i - w_0``; ``t = N cos / (1 + (N - 1) cos)``; the merge is
    ``t * mean_i(w_i) + (1 - t) * w_0``. Integer buffers (e.g. batch-norm
    counters) are taken from the base. Negative mean cosines give ``t = 0``.

    Parameters
    ----------
    base : state dict, dict of arrays, tensor, array, nn.Module or fitted net
        The pre-trained (anchor) weights.
    finetuned : list
        At least two fine-tuned versions of ``base``, of the same kind.
    filter_wise : bool, default=False
        One ratio per output row instead of one per tensor.
    return_ratio : bool, default=False
        Also return the ratio ``t`` of every tensor.

    Returns
    -------
    merged : same type as ``base``
        The merged weights (a state dict for modules and nets, ready for
        ``load_state_dict``).
    ratio : float, ndarray or dict
        Only with ``return_ratio``.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import model_stock
    >>> base = {"w": torch.zeros(2)}
    >>> tuned = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}]
    >>> model_stock(base, tuned)  # orthogonal offsets: t = 0, the base
    {'w': tensor([0., 0.])}
    >>> tuned = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([2.0, 0.0])}]
    >>> model_stock(base, tuned)  # parallel offsets: t = 1, the average
    {'w': tensor([1.5000, 0.0000])}
    """
    base = unwrap_state_dict(base)
    if not isinstance(finetuned, (list, tuple)):
        raise TypeError("finetuned must be a list of fine-tuned models, one per model.")
    finetuned = [unwrap_state_dict(model) for model in finetuned]
    if isinstance(base, Mapping):
        arrays = {key: to_numpy(value) for key, value in base.items()}
        tuned = [
            {key: to_numpy(value) for key, value in model.items()}
            if isinstance(model, Mapping)
            else model
            for model in finetuned
        ]
        merged, ratio = _model_stock_numpy(
            arrays, tuned, filter_wise=filter_wise, return_ratio=True
        )
        out = OrderedDict() if isinstance(base, OrderedDict) else {}
        for key, template in base.items():
            out[key] = tensor_like(merged[key], template)
    else:
        merged, ratio = _model_stock_numpy(
            to_numpy(base),
            [to_numpy(model) for model in finetuned],
            filter_wise=filter_wise,
            return_ratio=True,
        )
        out = tensor_like(merged, base)
    return (out, ratio) if return_ratio else out
