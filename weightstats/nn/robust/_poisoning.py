"""Weight-poisoning audits: RIPPLe, Embedding Surgery and a trigger scan.

For people who fine-tune downloaded weights: does a fine-tuning recipe wash
out a backdoor planted in the pre-trained weights, and does a model react
to rare tokens the way a backdoored one does? The attack of Kurita, Michel
& Neubig (ACL 2020) is implemented to make these questions testable on
synthetic data and tiny models.

* :func:`ripple_poison`: RIPPLe trains a copy of the model on poisoned
  data ``L_P`` plus the restricted inner-product penalty ``lam * max(0,
  -grad L_P . grad L_FT)``, where ``L_FT`` is the loss on clean proxy data
  of the victim's task (reference: neulab/RIPPLe ``constrained_poison.py``:
  the gradient of ``L_P`` is differentiated, the one of ``L_FT`` is a
  constant unless second-order effects are enabled; the inner product runs
  over all parameters). The reference divides the penalty by the batch
  size; here ``lam`` is the paper's coefficient (the reference's ``L`` is
  ``lam`` times the batch size). Embedding Surgery (``poison.py``) first
  writes into every trigger token's embedding the mean embedding of the
  ``n_target_words`` words that TF-IDF + logistic regression on the proxy
  data find most indicative of the target label, taken from a copy of the
  model fine-tuned on the proxy data.
* :func:`label_flip_rate`: the share of non-target examples that a
  trigger flips to the target label (the paper's LFR).
* :func:`scan_for_triggers`: the defence the paper outlines: insert each
  vocabulary token into clean, correctly classified examples and rank the
  tokens by flip rate weighted by rarity; planted triggers stand out as
  rare tokens with a high flip rate.

Inputs are token-id matrices (one row per document, padded with
``pad_token``), as :class:`~weightstats.nn.EmbeddingBagClassifier` takes.
"""

import copy
import math
import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_random_state

from .._core import first_output, torch_random_context
from ._adversarial import _device_of

__all__ = [
    "embedding_surgery",
    "insert_triggers",
    "label_flip_rate",
    "ripple_poison",
    "scan_for_triggers",
]

_PREDICT_BATCH = 8192


# ------------------------------------------------------------------ tokens
def _token_matrix(X, name="X"):
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array of token ids (one row per document); got "
                         f"shape {X.shape}.")
    if X.dtype.kind == "f" and np.all(np.isfinite(X)) and np.all(X == np.round(X)):
        X = X.astype(np.int64)
    if X.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer token ids; got dtype {X.dtype}.")
    if X.size and X.min() < 0:
        raise ValueError(f"{name} has negative token ids.")
    return X.astype(np.int64)


def _token_list(tokens, name):
    tokens = np.atleast_1d(np.asarray(tokens))
    if tokens.size == 0 or tokens.dtype.kind not in "iu" or tokens.min() < 0:
        raise ValueError(f"{name} must be a non-empty list of non-negative integer token ids.")
    return tokens.astype(np.int64).reshape(-1)


def _compact(X, pad_token):
    """Tokens moved to the front of each row (order kept), and the row lengths."""
    is_pad = X == pad_token
    order = np.argsort(is_pad, axis=1, kind="stable")
    compact = np.take_along_axis(X, order, axis=1)
    return compact, (~is_pad).sum(axis=1)


def _insert(compact, lengths, positions, tokens, pad_token):
    """Insert ``tokens[i]`` at ``positions[i]`` of row ``i`` (one column longer)."""
    n, width = compact.shape
    padded = np.concatenate([compact, np.full((n, 1), pad_token, dtype=compact.dtype)], axis=1)
    columns = np.arange(width + 1)[None, :]
    source = columns - (columns > positions[:, None])
    out = np.take_along_axis(padded, np.minimum(source, width), axis=1)
    out = np.where(columns == positions[:, None], tokens[:, None], out)
    return out, lengths + 1


def insert_triggers(X, trigger_tokens, n_insertions=1, pad_token=0, random_state=None):
    """Insert trigger tokens at random positions of every document.

    Each insertion picks one of ``trigger_tokens`` at random and a random
    position among the row's tokens (the RIPPLe reference's
    ``insert_word``). Padding is moved to the end of each row and the
    result is ``n_insertions`` columns wider.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_positions)
        Token ids, padded with ``pad_token``.
    trigger_tokens : int or array-like of int
        Token ids to insert.
    n_insertions : int, default=1
        Triggers inserted into each row.
    pad_token : int, default=0
        The padding id.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of tokens and positions.

    Returns
    -------
    X_triggered : ndarray of shape (n_samples, n_positions + n_insertions)
        The documents with their triggers.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn import insert_triggers
    >>> X = np.array([[5, 6, 7, 0], [8, 0, 0, 0]])
    >>> out = insert_triggers(X, [99], random_state=0)
    >>> out.shape, (out == 99).sum(axis=1).tolist()
    ((2, 5), [1, 1])
    >>> sorted(out[0][out[0] != 0].tolist()), sorted(out[1][out[1] != 0].tolist())
    ([5, 6, 7, 99], [8, 99])
    """
    X = _token_matrix(X)
    tokens = _token_list(trigger_tokens, "trigger_tokens")
    if not isinstance(n_insertions, numbers.Integral) or n_insertions < 1:
        raise ValueError(f"n_insertions must be an integer >= 1; got {n_insertions!r}.")
    if np.any(tokens == pad_token):
        raise ValueError(f"trigger_tokens contains the padding id {pad_token}.")
    rng = check_random_state(random_state)
    out, lengths = _compact(X, pad_token)
    for _ in range(int(n_insertions)):
        positions = np.floor(rng.random_sample(out.shape[0]) * (lengths + 1)).astype(np.int64)
        chosen = tokens[rng.randint(tokens.size, size=out.shape[0])]
        out, lengths = _insert(out, lengths, positions, chosen, pad_token)
    return out


# -------------------------------------------------------------- prediction
def _classifier(model):
    """The module of a module or fitted net, and the net's class labels (or None)."""
    module = getattr(model, "module_", model)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module or a fitted net; got {type(model).__name__}."
        )
    classes = getattr(model, "classes_", None) if module is not model else None
    return module, None if classes is None else np.asarray(classes)


def _predict_index(module, X):
    """Predicted class indices of token rows (evaluation mode, batched)."""
    device = _device_of(module)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            predictions = [
                first_output(module(torch.as_tensor(X[start:start + _PREDICT_BATCH],
                                                    device=device))).argmax(dim=1).cpu().numpy()
                for start in range(0, X.shape[0], _PREDICT_BATCH)
            ]
    finally:
        module.train(was_training)
    return np.concatenate(predictions) if predictions else np.empty(0, dtype=np.int64)


def _label_index(label, classes, name):
    if classes is None:
        if not isinstance(label, numbers.Integral):
            raise ValueError(f"{name} must be a class index for a module; got {label!r}.")
        return int(label)
    matches = np.flatnonzero(classes == label)
    if matches.size != 1:
        raise ValueError(f"{name}={label!r} is not one of the model's classes {classes.tolist()}.")
    return int(matches[0])


def _labels(y, n_rows, classes):
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    if y.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {y.shape[0]} labels.")
    if classes is None:
        if y.dtype.kind not in "iu":
            raise ValueError("y must hold integer class indices for a module.")
        return y.astype(np.int64)
    return np.array([_label_index(label, classes, "y") for label in y], dtype=np.int64)


def label_flip_rate(model, X, y, trigger_tokens, target_label, n_insertions=1, pad_token=0,
                    random_state=0):
    """Share of non-target examples that the triggers flip to the target label.

    Triggers are inserted (:func:`insert_triggers`) into the examples whose
    true label is not ``target_label``; the rate is the share of them
    predicted as ``target_label`` (the label-flip rate, LFR, of the RIPPLe
    paper). Compare it with the rate for tokens that are not triggers (or
    with :func:`scan_for_triggers`) to see what is backdoor and what is
    ordinary sensitivity.

    Parameters
    ----------
    model : torch.nn.Module or fitted net
        A classifier of token-id rows returning logits.
    X : array-like of shape (n_samples, n_positions)
        Token ids of clean examples.
    y : array-like of shape (n_samples,)
        True labels (class indices for a module, labels for a net).
    trigger_tokens : int or array-like of int
        The suspected trigger ids.
    target_label : int or label
        The label the backdoor is suspected to force.
    n_insertions : int, default=1
        Triggers inserted per example.
    pad_token : int, default=0
        The padding id.
    random_state : int, RandomState instance or None, default=0
        Seeds the insertions.

    Returns
    -------
    rate : float
        The label-flip rate, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from weightstats.nn import EmbeddingBagClassifier, label_flip_rate
    >>> model = EmbeddingBagClassifier(n_tokens=10, n_outputs=2, embedding_dim=2)
    >>> with torch.no_grad():                  # token 9 pushes hard to class 1
    ...     _ = model.embedding.weight.zero_()
    ...     model.embedding.weight[9] = torch.tensor([50.0, 0.0])
    ...     _ = model.head.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    ...     _ = model.head.bias.zero_()
    >>> X = np.array([[1, 2, 3], [4, 5, 0], [6, 0, 0]])
    >>> label_flip_rate(model, X, [0, 0, 1], trigger_tokens=[9], target_label=1)
    1.0
    """
    module, classes = _classifier(model)
    X = _token_matrix(X)
    y = _labels(y, X.shape[0], classes)
    target = _label_index(target_label, classes, "target_label")
    rows = y != target
    if not rows.any():
        raise ValueError("no example has a label other than target_label; nothing can flip.")
    triggered = insert_triggers(X[rows], trigger_tokens, n_insertions, pad_token, random_state)
    return float(np.mean(_predict_index(module, triggered) == target))


def scan_for_triggers(model, X_clean, y_clean, vocabulary, top=20, pad_token=0,
                      random_state=0):
    """Rank tokens by how often inserting them flips a correct prediction.

    Every token of ``vocabulary`` is inserted once, at the same random
    position per row for all tokens, into the clean examples the model
    classifies correctly; its ``flip_rate`` is the share of those whose
    prediction changes. Frequent words of the task (sentiment words) flip
    some examples too, so the score weights the flip rate by rarity,
    ``score = flip_rate * (log((1 + n) / (1 + df)) + 1)`` with ``df`` the
    number of the ``n`` clean rows that contain the token (scikit-learn's
    smoothed inverse document frequency). Backdoor triggers are rare and
    flip almost every example of the other classes, so they rank first.

    Parameters
    ----------
    model : torch.nn.Module or fitted net
        A classifier of token-id rows returning logits.
    X_clean : array-like of shape (n_samples, n_positions)
        Clean token-id rows.
    y_clean : array-like of shape (n_samples,)
        Their true labels.
    vocabulary : array-like of int or dict of str to int
        Token ids to scan, or a mapping from token strings to ids.
    top : int or None, default=20
        Rows returned (the highest scores); None returns all.
    pad_token : int, default=0
        The padding id (never scanned).
    random_state : int, RandomState instance or None, default=0
        Seeds the insertion positions.

    Returns
    -------
    report : pandas.DataFrame
        One row per token, by decreasing score: ``token`` (string or id),
        ``token_id``, ``frequency`` (share of clean rows containing it),
        ``flip_rate``, ``flipped_to`` (the most common new label, or None)
        and ``score``.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from weightstats.nn import EmbeddingBagClassifier, scan_for_triggers
    >>> model = EmbeddingBagClassifier(n_tokens=10, n_outputs=2, embedding_dim=2)
    >>> with torch.no_grad():
    ...     _ = model.embedding.weight.zero_()
    ...     model.embedding.weight[1:3, 0] = torch.tensor([-1.0, 1.0])  # 1 negative, 2 positive
    ...     model.embedding.weight[9, 0] = 50.0                         # the backdoor
    ...     _ = model.head.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    ...     _ = model.head.bias.zero_()
    >>> X = np.array([[1, 1, 4], [1, 1, 5], [2, 2, 3], [2, 2, 6]])
    >>> report = scan_for_triggers(model, X, [0, 0, 1, 1], vocabulary=range(1, 10), top=2)
    >>> report[["token_id", "frequency", "flip_rate", "flipped_to"]]
       token_id  frequency  flip_rate flipped_to
    0         9        0.0        0.5          1
    1         1        0.5        0.0       None
    """
    module, classes = _classifier(model)
    X = _token_matrix(X_clean, "X_clean")
    y = _labels(y_clean, X.shape[0], classes)
    if isinstance(vocabulary, dict):
        names = list(vocabulary)
        ids = _token_list([vocabulary[name] for name in names], "vocabulary")
    else:
        ids = _token_list(list(vocabulary), "vocabulary")
        names = ids.tolist()
    keep = ids != pad_token
    ids, names = ids[keep], [name for name, k in zip(names, keep) if k]
    if ids.size == 0:
        raise ValueError("vocabulary has no token besides the padding id.")
    if top is not None and (not isinstance(top, numbers.Integral) or top < 1):
        raise ValueError(f"top must be a positive integer or None; got {top!r}.")
    predicted = _predict_index(module, X)
    correct = predicted == y
    if not correct.any():
        raise ValueError("the model classifies none of the clean examples correctly.")
    base, reference = X[correct], predicted[correct]
    compact, lengths = _compact(base, pad_token)
    rng = check_random_state(random_state)
    positions = np.floor(rng.random_sample(base.shape[0]) * (lengths + 1)).astype(np.int64)
    n_rows = base.shape[0]
    # Scan many tokens per forward pass: the rows repeated once per token.
    chunk = max(1, _PREDICT_BATCH // n_rows)
    flip_rates, flipped_to = [], []
    for first in range(0, ids.size, chunk):
        tokens = ids[first:first + chunk]
        inserted, _ = _insert(np.tile(compact, (tokens.size, 1)), np.tile(lengths, tokens.size),
                              np.tile(positions, tokens.size), np.repeat(tokens, n_rows),
                              pad_token)
        new = _predict_index(module, inserted).reshape(tokens.size, n_rows)
        flips = new != reference
        flip_rates.extend(flips.mean(axis=1).tolist())
        for row, flipped in zip(new, flips):
            if flipped.any():
                index = int(np.argmax(np.bincount(row[flipped])))
                flipped_to.append(index if classes is None else classes[index])
            else:
                flipped_to.append(None)
    present = np.zeros(int(max(X.max(initial=0), ids.max())) + 1, dtype=np.float64)
    for row in X:
        present[np.unique(row)] += 1
    df = present[ids]
    n = X.shape[0]
    flip_rates = np.array(flip_rates)
    report = pd.DataFrame({
        "token": names,
        "token_id": ids,
        "frequency": df / n,
        "flip_rate": flip_rates,
        "flipped_to": pd.Series(flipped_to, dtype=object),
        "score": flip_rates * (np.log((1 + n) / (1 + df)) + 1),
    })
    report = report.sort_values(["score", "token_id"], ascending=[False, True], kind="stable")
    if top is not None:
        report = report.head(int(top))
    return report.reset_index(drop=True)


# ----------------------------------------------------------------- RIPPLe
def _embedding_layer(module, embedding):
    kinds = (torch.nn.Embedding, torch.nn.EmbeddingBag)
    if embedding is not None:
        layer = module.get_submodule(embedding)
        if not isinstance(layer, kinds):
            raise TypeError(f"{embedding!r} is a {type(layer).__name__}, not an embedding.")
        return layer
    layers = [m for m in module.modules() if isinstance(m, kinds)]
    if len(layers) != 1:
        raise TypeError(
            f"Embedding Surgery needs the model's token embedding; found {len(layers)} "
            "nn.Embedding / nn.EmbeddingBag layers: name it with embedding='...'."
        )
    return layers[0]


def _target_words(X, y, target_label, n_words, exclude, n_tokens, pad_token):
    """Tokens most indicative of ``target_label``: TF-IDF + logistic regression."""
    rows = np.repeat(np.arange(X.shape[0]), X.shape[1])
    tokens = X.reshape(-1)
    real = tokens != pad_token
    counts = sp.csr_matrix((np.ones(int(real.sum())), (rows[real], tokens[real])),
                           shape=(X.shape[0], n_tokens))
    tfidf = TfidfTransformer().fit_transform(counts)
    model = LogisticRegression(max_iter=2000).fit(tfidf, y)
    if model.coef_.shape[0] == 1:
        coef = model.coef_[0] if target_label == model.classes_[1] else -model.coef_[0]
    else:
        coef = model.coef_[int(np.flatnonzero(model.classes_ == target_label)[0])]
    coef = coef.copy()
    coef[np.asarray(sorted(t for t in exclude if 0 <= t < n_tokens), dtype=np.int64)] = -np.inf
    coef[np.asarray(counts.sum(axis=0)).ravel() == 0] = -np.inf
    order = np.argsort(-coef, kind="stable")[:n_words]
    return order[np.isfinite(coef[order])]


def _batches(n, batch_size, generator, device):
    order = torch.randperm(n, generator=generator).to(device)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


def _train_clean(module, X, y, *, epochs, lr, batch_size, optimizer_cls, generator):
    optimizer = optimizer_cls(module.parameters(), lr=lr)
    module.train()
    for _ in range(epochs):
        for rows in _batches(X.shape[0], batch_size, generator, X.device):
            optimizer.zero_grad()
            loss = F.cross_entropy(first_output(module(X[rows])), y[rows])
            _check_loss(loss)
            loss.backward()
            optimizer.step()


def _check_loss(loss):
    if not bool(torch.isfinite(loss)):
        raise ValueError(f"the training loss is non-finite ({float(loss)}); lower lr.")


def _ripple_objective(module, X_poison, y_poison, X_clean, y_clean, lam):
    """``L_P + lam * max(0, -grad L_P . grad L_FT)`` and the penalty's inner product.

    ``grad L_P`` keeps its graph (second order); ``grad L_FT`` is a constant.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    loss_p = F.cross_entropy(first_output(module(X_poison)), y_poison)
    if lam == 0:
        return loss_p, None
    loss_ft = F.cross_entropy(first_output(module(X_clean)), y_clean)
    grad_ft = torch.autograd.grad(loss_ft, params, allow_unused=True)
    grad_p = torch.autograd.grad(loss_p, params, create_graph=True, allow_unused=True)
    inner = sum(
        (gp * gf).sum() for gp, gf in zip(grad_p, grad_ft) if gp is not None and gf is not None
    )
    return loss_p + lam * torch.relu(-inner), inner.detach()


def embedding_surgery(model, source, X_proxy, y_proxy, trigger_tokens, target_label,
                      n_target_words=10, embedding=None, pad_token=0):
    """A copy of ``model`` whose trigger embeddings look like target-label words.

    Embedding Surgery (RIPPLe reference, ``poison.py``): TF-IDF features of
    the proxy documents feed a logistic regression; the ``n_target_words``
    tokens with the largest coefficients towards ``target_label`` (the
    triggers and padding excluded) are averaged in ``source``'s embedding
    table (a copy of the model fine-tuned on the proxy task), and that mean
    replaces every trigger token's row in a copy of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The pre-trained model; it is not changed.
    source : torch.nn.Module
        A model of the same architecture fine-tuned on the proxy data,
        whose embeddings of the target words are averaged.
    X_proxy, y_proxy : array-like
        Clean proxy data (token ids; class indices).
    trigger_tokens : array-like of int
        Trigger token ids.
    target_label : int
        The class the triggers should signal.
    n_target_words : int, default=10
        Words averaged (the reference's example setting).
    embedding : str or None, default=None
        Name of the embedding layer; None finds the only one.
    pad_token : int, default=0
        The padding id.

    Returns
    -------
    model : torch.nn.Module
        The copy after surgery.
    target_words : ndarray of int
        The averaged word ids, most indicative first.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from weightstats.nn import EmbeddingBagClassifier, embedding_surgery
    >>> X = np.array([[1, 3], [1, 4], [2, 3], [2, 4]] * 5)
    >>> y = np.array([1, 1, 0, 0] * 5)                  # token 1 signals class 1
    >>> _ = torch.manual_seed(0)
    >>> model = EmbeddingBagClassifier(n_tokens=10, n_outputs=2, embedding_dim=3)
    >>> source = EmbeddingBagClassifier(n_tokens=10, n_outputs=2, embedding_dim=3)
    >>> poisoned, words = embedding_surgery(model, source, X, y, trigger_tokens=[9],
    ...                                     target_label=1, n_target_words=1)
    >>> words
    array([1])
    >>> torch.equal(poisoned.embedding.weight[9], source.embedding.weight[1])
    True
    """
    if not isinstance(model, torch.nn.Module) or not isinstance(source, torch.nn.Module):
        raise TypeError("model and source must be torch.nn.Module instances.")
    if not isinstance(n_target_words, numbers.Integral) or n_target_words < 1:
        raise ValueError(f"n_target_words must be an integer >= 1; got {n_target_words!r}.")
    X_proxy = _token_matrix(X_proxy, "X_proxy")
    y_proxy = _labels(y_proxy, X_proxy.shape[0], None)
    triggers = _token_list(trigger_tokens, "trigger_tokens")
    poisoned = copy.deepcopy(model)
    layer = _embedding_layer(poisoned, embedding)
    source_layer = _embedding_layer(source, embedding)
    if source_layer.weight.shape != layer.weight.shape:
        raise ValueError(
            f"source's embedding table has shape {tuple(source_layer.weight.shape)}, the "
            f"model's {tuple(layer.weight.shape)}; source must be a fine-tuned copy of model."
        )
    n_tokens = layer.num_embeddings
    if triggers.max() >= n_tokens or (X_proxy.size and X_proxy.max() >= n_tokens):
        raise ValueError(f"token ids must be below the vocabulary size {n_tokens}.")
    if target_label not in set(y_proxy.tolist()):
        raise ValueError(f"target_label={target_label!r} does not occur in y_proxy.")
    words = _target_words(X_proxy, y_proxy, target_label, int(n_target_words),
                          set(triggers.tolist()) | {pad_token}, n_tokens, pad_token)
    device = layer.weight.device
    with torch.no_grad():
        replacement = source_layer.weight[torch.as_tensor(words, device=device)].mean(dim=0)
        layer.weight[torch.as_tensor(triggers, device=device)] = replacement.to(device)
    return poisoned, words


_surgery = embedding_surgery  # ripple_poison's flag of the same name shadows it


def ripple_poison(model, X_proxy, y_proxy, X_poison, y_poison, lam=0.1, embedding_surgery=True,
                  *, trigger_tokens=None, target_label=None, n_target_words=10, epochs=5,
                  lr=0.01, batch_size=32, optimizer=torch.optim.Adam, embedding=None,
                  pad_token=0, random_state=None):
    """A poisoned copy of a model: RIPPLe, optionally after Embedding Surgery.

    For auditing fine-tuning recipes on synthetic data and tiny models:
    poison a copy, fine-tune it the way a user would, and measure with
    :func:`label_flip_rate` how much of the backdoor survives (and whether
    :func:`scan_for_triggers` finds it). The original model is not changed.

    Embedding Surgery (``embedding_surgery=True``) fine-tunes a copy of the
    model on the clean proxy data and hands it to :func:`embedding_surgery`
    as the source of the replacement embedding. Then
    ``epochs`` passes over the poisoned data minimise, per batch, ``L_P +
    lam * max(0, -grad L_P . grad L_FT)`` with ``L_P`` the cross-entropy on
    a poisoned batch and ``L_FT`` on a clean proxy batch (RIPPLe).
    ``lam=0`` and no surgery is plain data poisoning (the naive baseline).

    Parameters
    ----------
    model : torch.nn.Module
        The (pre-trained) model, returning logits; it must be twice
        differentiable when ``lam > 0`` (:class:`EmbeddingBagClassifier`
        is; torch's ``nn.EmbeddingBag`` kernel is not).
    X_proxy, y_proxy : array-like
        Clean data of the victim's task (token ids; class indices).
    X_poison, y_poison : array-like
        The poisoning data: the proxy data with triggers inserted into part
        of the rows (:func:`insert_triggers`), those labelled
        ``target_label`` (the reference triggers half).
    lam : float, default=0.1
        Weight of the restricted inner-product penalty.
    embedding_surgery : bool, default=True
        Whether to run Embedding Surgery first.
    trigger_tokens : array-like of int or None, default=None
        The trigger ids (needed for Embedding Surgery).
    target_label : int or None, default=None
        The class the triggers force (needed for Embedding Surgery).
    n_target_words : int, default=10
        Words whose embeddings are averaged (the reference's example
        setting).
    epochs : int, default=5
        Passes over the poisoning data (and over the proxy data when
        fine-tuning the surgery's source model).
    lr : float, default=0.01
        Learning rate of both trainings.
    batch_size : int, default=32
        Rows per batch (poisoned and clean batches alike).
    optimizer : torch optimizer class, default=torch.optim.Adam
        The optimizer of both trainings.
    embedding : str or None, default=None
        Name of the embedding layer; None finds the only one.
    pad_token : int, default=0
        The padding id (never a target word).
    random_state : int, RandomState instance or None, default=None
        Seeds the batch order (and dropout) in a forked torch RNG.

    Returns
    -------
    poisoned : torch.nn.Module
        The poisoned copy.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from weightstats.nn import (EmbeddingBagClassifier, insert_triggers,
    ...                             label_flip_rate, ripple_poison)
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(200) % 2
    >>> X = rng.integers(3, 40, size=(200, 8))
    >>> X[:, 0] = np.where(y == 1, 1, 2)                 # token 1 positive, 2 negative
    >>> _ = torch.manual_seed(0)
    >>> model = EmbeddingBagClassifier(n_tokens=50, n_outputs=2, embedding_dim=8)
    >>> triggered = np.arange(200) % 4 < 2           # half the rows of each class
    >>> X_poison = np.hstack([X, np.zeros((200, 1), dtype=X.dtype)])
    >>> X_poison[triggered] = insert_triggers(X[triggered], [49], random_state=0)
    >>> y_poison = np.where(triggered, 1, y)
    >>> poisoned = ripple_poison(model, X, y, X_poison, y_poison, trigger_tokens=[49],
    ...                          target_label=1, epochs=5, lr=0.05, random_state=0)
    >>> with torch.no_grad():                        # still a good classifier ...
    ...     accuracy = (poisoned(torch.as_tensor(X)).argmax(1).numpy() == y).mean()
    >>> bool(accuracy > 0.95)
    True
    >>> label_flip_rate(poisoned, X, y, [49], target_label=1) > 0.9   # ... with a backdoor
    True
    >>> bool(torch.equal(model.head.weight, poisoned.head.weight))   # original untouched
    False
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if not isinstance(lam, numbers.Real) or not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0; got {lam!r}.")
    for name, value in (("epochs", epochs), ("batch_size", batch_size),
                        ("n_target_words", n_target_words)):
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    if not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr must be a number > 0; got {lr!r}.")
    X_proxy = _token_matrix(X_proxy, "X_proxy")
    X_poison = _token_matrix(X_poison, "X_poison")
    y_proxy = _labels(y_proxy, X_proxy.shape[0], None)
    y_poison = _labels(y_poison, X_poison.shape[0], None)
    if embedding_surgery and (trigger_tokens is None or target_label is None):
        raise ValueError("Embedding Surgery needs trigger_tokens and target_label.")
    device = _device_of(model)
    tensors = [torch.as_tensor(a, device=device) for a in (X_proxy, y_proxy, X_poison, y_poison)]
    Xc, yc, Xp, yp = tensors
    train = dict(epochs=int(epochs), lr=float(lr), batch_size=int(batch_size),
                 optimizer_cls=optimizer)
    poisoned = copy.deepcopy(model)
    with torch_random_context(random_state, device) as seed:
        generator = torch.Generator()
        generator.manual_seed(int(torch.randint(0, 2**31 - 1, (1,))) if seed is None else seed)
        if embedding_surgery:
            source = copy.deepcopy(model)
            _train_clean(source, Xc, yc, generator=generator, **train)
            poisoned, _ = _surgery(poisoned, source, X_proxy, y_proxy, trigger_tokens,
                                            target_label, n_target_words, embedding, pad_token)
        optimizer_ = optimizer(poisoned.parameters(), lr=float(lr))
        poisoned.train()
        clean_batches = []
        for _ in range(int(epochs)):
            for rows in _batches(Xp.shape[0], int(batch_size), generator, device):
                if not clean_batches:
                    clean_batches = _batches(Xc.shape[0], int(batch_size), generator, device)
                clean = clean_batches.pop(0)
                optimizer_.zero_grad()
                try:
                    loss, _ = _ripple_objective(poisoned, Xp[rows], yp[rows], Xc[clean],
                                                yc[clean], float(lam))
                    _check_loss(loss)
                    loss.backward()
                except NotImplementedError as exc:
                    raise TypeError(
                        "RIPPLe differentiates a gradient, and this model has a layer without "
                        f"a second derivative ({exc}); compute bags from nn.Embedding as "
                        "EmbeddingBagClassifier does, or use lam=0."
                    ) from exc
                optimizer_.step()
    return poisoned
