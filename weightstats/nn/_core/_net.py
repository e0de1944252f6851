"""skorch nets with the defaults a scikit-learn user expects.

:class:`NeuralNetClassifier` and :class:`NeuralNetRegressor` subclass the
skorch classes of the same name and add, on top of everything skorch does:

* scikit-learn input validation for array-like ``X`` (NaN, shapes, feature
  names, ``n_features_in_``), arbitrary class labels, 1-d regression targets;
  torch Datasets, tensors and dicts still go straight to skorch;
* ``fit(X, y, sample_weight=...)``: every loss is computed per sample and
  reduced as a weighted mean. This is the single extension point of the
  weighting methods: they override :meth:`get_sample_losses` (extra terms
  per row) or supply weights (class-balanced, DS, per-timestep, ...);
* ``random_state``: training runs inside ``torch.random.fork_rng`` seeded
  from it, so module initialisation, dropout and batch shuffling repeat
  exactly, and the global torch RNG is left untouched;
* a default :class:`~weightstats.nn.MLP` module whose input and output sizes
  come from the data, logits with ``CrossEntropyLoss``, shuffled training
  batches, no internal validation split, silent training;
* persistence that skops can audit (:mod:`._persistence`).
"""

import inspect
import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import skorch
import torch
from sklearn.utils._available_if import available_if
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EpochScoring
from skorch.dataset import Dataset
from skorch.utils import is_dataset, to_numpy, to_tensor
from torch.utils.data import DataLoader

from ...utils import check_sample_weight
from ..layers import MLP
from ._data import (
    DATA_KEY,
    SCALE_ADVICE,
    WEIGHT_KEY,
    BatchedDataset,
    batch_features,
    batch_sample_weight,
    check_dict_input,
    check_finite_tensor,
    collate,
    first_output,
    is_passthrough,
    n_rows,
    plain_arrays,
    warn_if_unscaled,
    writable,
)
from ._docs import fill_net_doc
from ._persistence import PersistenceMixin
from ._schedule import TrainingRun
from ._seeding import torch_random_context

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

# A training batch loss this many times the first one (or 1) means divergence.
_DIVERGENCE_FACTOR = 1e6


class _NetMixin(PersistenceMixin):
    """What both nets share; placed before the skorch class in the MRO."""

    # skorch's own ``_validate_params`` (called by ``initialize``) shadows
    # scikit-learn's, so the parameters weightstats adds are checked here.
    _extra_constraints = {"random_state": ["random_state"]}

    def __init__(
        self,
        module=MLP,
        *,
        criterion,
        optimizer=torch.optim.SGD,
        lr=0.01,
        max_epochs=10,
        batch_size=128,
        iterator_train=DataLoader,
        iterator_valid=DataLoader,
        dataset=Dataset,
        train_split=None,
        callbacks=None,
        predict_nonlinearity="auto",
        warm_start=False,
        verbose=0,
        device="cpu",
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        random_state=None,
        **kwargs,
    ):
        # The parameters of both nets, with the defaults weightstats chooses;
        # the nets declare what differs (see ``shared_net_signature``).
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            dataset=dataset,
            train_split=train_split,
            callbacks=callbacks,
            predict_nonlinearity=predict_nonlinearity,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            compile=compile,
            use_caching=use_caching,
            torch_load_kwargs=torch_load_kwargs,
            **kwargs,
        )
        self.random_state = random_state

    def _check_extra_params(self):
        params = {name: getattr(self, name) for name in self._extra_constraints}
        validate_parameter_constraints(self._extra_constraints, params, type(self).__name__)

    # ------------------------------------------------------------------ data
    def _validate_X_y(self, X, y, *, reset, classes=None):
        raise NotImplementedError

    def _prepare_fit(self, X, y, sample_weight, *, reset, classes=None):
        """Validate the training data and attach the weights.

        Returns what skorch's fit loop gets: ``X`` (or a dict with the
        weights) and the encoded target.
        """
        self._check_extra_params()
        if is_passthrough(X):
            X, y = self._passthrough_fit_data(X, y, reset=reset, classes=classes)
            n_samples = None if is_dataset(X) else n_rows(X)
        else:
            X, y = self._validate_X_y(X, y, reset=reset, classes=classes)
            warn_if_unscaled(X)
            X = writable(X)
            n_samples = X.shape[0]
            if reset:
                self._input_width_ = X.shape[1]
        if sample_weight is None:
            return X, y
        if n_samples is None:
            raise ValueError(
                "sample_weight cannot be combined with a torch Dataset X; put the weights in "
                "the dataset or pass X as an array or dict."
            )
        weights = check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float64)
        # Mean-one weights: the expected batch loss is the weighted mean loss
        # over the training set, whatever the scale of the weights.
        weights = (weights / weights.mean()).astype(np.float32)
        if isinstance(X, Mapping):
            if WEIGHT_KEY in X:
                raise ValueError(
                    f"X already has a {WEIGHT_KEY!r} entry; pass the weights either in X or "
                    "as sample_weight, not both."
                )
            return {**X, WEIGHT_KEY: weights}, y
        return {DATA_KEY: X, WEIGHT_KEY: weights}, y

    def _passthrough_fit_data(self, X, y, *, reset, classes=None):
        if isinstance(X, Mapping):
            X = check_dict_input(X)
        check_finite_tensor(X, "X")
        check_finite_tensor(y, "y")
        if reset:
            # Sizes for the module come from this input, not an earlier fit.
            for name in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(name, None)
            data = X.get(DATA_KEY) if isinstance(X, Mapping) else X
            shape = getattr(data, "shape", ())
            self._input_width_ = int(shape[1]) if len(shape) == 2 else None
        return X, y

    def _validate_X(self, X):
        if isinstance(X, Mapping) and not sp.issparse(X):
            return check_dict_input(X)
        if is_passthrough(X):
            return check_finite_tensor(X, "X")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return writable(X)

    # --------------------------------------------------------------- fitting
    def _random_context(self, reset):
        # A fresh fit always uses the same seed; continued training mixes in
        # the number of epochs done so that it draws new batches.
        offset = 0 if reset or self.history_ is None else len(self.history_)
        return torch_random_context(self.random_state, self.device, offset)

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Initialise (unless ``warm_start``) and train the net.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Training inputs. Arrays and DataFrames are validated as in
            scikit-learn; dicts, tensors and torch Datasets go to skorch
            as they are (dict entries become ``forward`` keyword arguments).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss (rescaled to mean
            one, so only their ratios matter).
        **fit_params : dict
            Passed to skorch: ``epochs=`` (instead of ``max_epochs``),
            ``forward`` keyword arguments, split options.

        Returns
        -------
        self : object
            The trained net.
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, sample_weight, reset=reset, fit_params=fit_params)

    def partial_fit(self, X, y, classes=None, sample_weight=None, **fit_params):
        """Train for ``max_epochs`` (or ``epochs=``) more epochs without re-initialising.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Training inputs (see :meth:`fit`).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        classes : array-like of shape (n_classes,), default=None
            All classes (classifiers, first call only); by default the
            classes in ``y``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
            The trained net.
        """
        reset = not self.initialized_
        return self._fit(
            X, y, sample_weight, reset=reset, classes=classes, fit_params=fit_params
        )

    def _fit(self, X, y, sample_weight, *, reset, fit_params, classes=None):
        X, y = self._prepare_fit(X, y, sample_weight, reset=reset, classes=classes)
        with self._random_context(reset):
            if reset:
                self.initialize()
            epochs = fit_params.get("epochs")
            # Callbacks count their epochs from here (EpochsSinceFit).
            self._training_run_ = TrainingRun(
                len(self.history_), self.max_epochs if epochs is None else epochs
            )
            try:
                self._train(X, y, **fit_params)
            finally:
                del self._training_run_
        return self

    def _train(self, X, y, **fit_params):
        """One training run on prepared data (skorch's partial_fit body)."""
        skorch.NeuralNet.partial_fit(self, X, y, **fit_params)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Stop on a non-finite training loss; warn when the loss explodes.

        Parameters
        ----------
        net : NeuralNet
            This net.
        batch : tuple, default=None
            The batch.
        training : bool, default=False
            Whether it was a training batch.
        **kwargs : dict
            The step's outputs (``loss``, ``y_pred``).
        """
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if training:
            self._check_training_loss()

    def _check_training_loss(self):
        batches = self.history[-1, "batches"]
        loss = batches[-1].get("train_loss")
        if loss is None:
            return
        where = f"epoch {len(self.history)}, batch {len(batches)}"
        if not np.isfinite(loss):
            raise ValueError(
                f"the training loss is non-finite ({loss}) at {where}: training diverged. "
                f"{SCALE_ADVICE}"
            )
        run = getattr(self, "_training_run_", None)
        if run is None or run.diverged:
            return
        if run.first_loss is None:
            run.first_loss = loss
        elif abs(loss) > _DIVERGENCE_FACTOR * max(abs(run.first_loss), 1.0):
            run.diverged = True
            warnings.warn(
                f"the training loss jumped from {run.first_loss:.3g} (first batch) to "
                f"{loss:.3g} at {where}: training diverged and the net is unlikely to be "
                f"usable. {SCALE_ADVICE}",
                ConvergenceWarning,
                stacklevel=2,
            )

    # ----------------------------------------------------------------- torch
    def initialize_module(self):
        """Instantiate the module, filling in sizes learned from the data.

        Callbacks with a ``modify_module(net, module)`` method (such as
        :class:`AdapterTuning`) then get to replace it, in their order.

        Returns
        -------
        self : object
            The net, with ``module_`` set.
        """
        kwargs = self.get_params_for("module")
        if isinstance(self.module, type):
            kwargs = {**self._module_defaults(self.module, kwargs), **kwargs}
        self.module_ = self.initialized_instance(self.module, kwargs)
        # Callbacks that rebuild the module (adapters, parametrisations) do so
        # here, before the optimizer collects its parameters.
        for _, callback in getattr(self, "callbacks_", None) or []:
            if hasattr(callback, "modify_module"):
                self.module_ = callback.modify_module(self, self.module_)
        return self

    def _inferred_module_params(self):
        """Constructor arguments learned from the data (subclasses extend)."""
        params = {}
        if getattr(self, "_input_width_", None) is not None:
            params["n_features"] = self._input_width_
        return params

    def _module_defaults(self, module_cls, given):
        try:
            accepted = inspect.signature(module_cls).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without signature
            return {}
        return {
            name: value
            for name, value in self._inferred_module_params().items()
            if name in accepted and name not in given
        }

    def _optimizer_defaults(self):
        """Optimizer options used unless given as ``optimizer__*`` (subclasses)."""
        return {}

    def get_params_for_optimizer(self, prefix, named_parameters):
        """Optimizer arguments, with the estimator's defaults filled in.

        Parameters
        ----------
        prefix : str
            The optimizer's name (``"optimizer"``).
        named_parameters : iterable of (str, torch.nn.Parameter)
            The parameters to optimise.

        Returns
        -------
        args : tuple
            Positional arguments (the parameter groups).
        kwargs : dict
            Keyword arguments (``lr`` and the ``optimizer__*`` options).
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        optimizer = getattr(self, prefix, None)
        defaults = self._optimizer_defaults() if prefix == "optimizer" else {}
        if defaults and isinstance(optimizer, type):
            accepted = inspect.signature(optimizer).parameters
            for key, value in defaults.items():
                if key in accepted:
                    kwargs.setdefault(key, value)
        return args, kwargs

    def initialize_criterion(self):
        """Instantiate the criterion and make it return per-sample losses.

        Returns
        -------
        self : object
            The net, with ``criterion_`` set.
        """
        super().initialize_criterion()
        for name in self._criteria:
            criterion = getattr(self, name + "_", None)
            if hasattr(criterion, "reduction"):
                criterion.reduction = "none"
        return self

    def infer(self, x, **fit_params):
        """Forward a batch, dropping the weights that travel with it.

        Parameters
        ----------
        x : tensor or dict of tensors
            A batch of inputs.
        **fit_params : dict
            Extra ``forward`` keyword arguments.

        Returns
        -------
        y_pred : tensor or tuple of tensors
            The module output.
        """
        return super().infer(batch_features(x), **fit_params)

    def get_sample_losses(self, y_pred, y_true, X=None, training=False):
        """The loss of each row of a batch.

        Override this to add per-row terms (regularisers, distillation);
        :meth:`get_loss` weights and averages what it returns.

        Parameters
        ----------
        y_pred : tensor or tuple of tensors
            Module output; for a tuple the first element is the prediction.
        y_true : tensor
            Targets of the batch.
        X : tensor or dict, default=None
            The batch inputs (with the weights, if any).
        training : bool, default=False
            Whether this is a training step.

        Returns
        -------
        losses : tensor of shape (batch_size,)
            Per-row losses (a scalar when the criterion cannot return
            per-row values).
        """
        y_pred = first_output(y_pred)
        y_true = to_tensor(y_true, device=self.device)
        if isinstance(self.criterion_, torch.nn.NLLLoss):
            # skorch's convention: modules feeding NLLLoss output probabilities.
            y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        losses = self.criterion_(y_pred, y_true)
        if losses.ndim == 0:
            return losses
        return losses.reshape(losses.shape[0], -1).mean(dim=1)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Weighted mean of :meth:`get_sample_losses`.

        Parameters
        ----------
        y_pred : tensor or tuple of tensors
            Module output.
        y_true : tensor
            Targets of the batch.
        X : tensor or dict, default=None
            The batch inputs; a dict may carry ``"sample_weight"``.
        training : bool, default=False
            Whether this is a training step.

        Returns
        -------
        loss : tensor
            The scalar loss.
        """
        losses = self.get_sample_losses(y_pred, y_true, X=X, training=training)
        weight = batch_sample_weight(X)
        if losses.ndim == 0:
            if weight is not None:
                raise ValueError(
                    f"{type(self.criterion_).__name__} returns one loss per batch, so rows "
                    "cannot be weighted; use a criterion with reduction='none'."
                )
            return losses
        if weight is None:
            return losses.mean()
        weight = to_tensor(weight, device=losses.device).to(losses.dtype).reshape(-1)
        return (weight * losses).mean()

    def get_dataset(self, X, y=None):
        """Wrap ``X`` and ``y`` in a Dataset (batched fetching for arrays).

        Parameters
        ----------
        X : array, tensor, dict or Dataset
            Inputs.
        y : array, tensor or None, default=None
            Targets.

        Returns
        -------
        dataset : torch Dataset
            The dataset.
        """
        if (
            self.dataset is Dataset
            and not self.get_params_for("dataset")
            and self._loaders_take_whole_batches()
            and plain_arrays(X)
            and (y is None or plain_arrays(y))
        ):
            return BatchedDataset(X, y)
        return super().get_dataset(X, y)

    def _loaders_take_whole_batches(self):
        # Whole-batch fetching hands the loader an assembled batch, which
        # only our own collate function expects; custom loaders and custom
        # collate functions get skorch's per-row items.
        return all(
            getattr(self, prefix) is DataLoader and "collate_fn" not in self.get_params_for(prefix)
            for prefix in ("iterator_train", "iterator_valid")
        )

    def get_iterator(self, dataset, training=False):
        """A DataLoader over ``dataset``; training batches are shuffled.

        Parameters
        ----------
        dataset : torch Dataset
            The data.
        training : bool, default=False
            Whether the loader is for training.

        Returns
        -------
        iterator : DataLoader
            The loader.
        """
        if training:
            kwargs = self.get_params_for("iterator_train")
            iterator = self.iterator_train
            if iterator is DataLoader and not {"sampler", "batch_sampler"} & set(kwargs):
                kwargs.setdefault("shuffle", True)
        else:
            kwargs = self.get_params_for("iterator_valid")
            iterator = self.iterator_valid
        if iterator is DataLoader:
            kwargs.setdefault("collate_fn", collate)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        return iterator(dataset, **kwargs)

    def evaluate_losses(self, X, y):
        """Losses of individual rows under the fitted net (evaluation mode).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, in the original labels.

        Returns
        -------
        losses : ndarray of shape (n_samples,)
            The per-row losses (without sample weights).
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        y = self._encode_target(y)
        dataset = self.get_dataset(X, y)
        losses = []
        with torch.no_grad():
            for batch in self.get_iterator(dataset, training=False):
                Xi, yi = skorch.dataset.unpack_data(batch)
                y_pred = self.evaluation_step(batch, training=False)
                losses.append(to_numpy(self.get_sample_losses(y_pred, yi, X=Xi, training=False)))
        return np.concatenate(losses).astype(np.float64)

    # ------------------------------------------------------------- sklearn
    def _get_param_names(self):
        # skorch lists every non-underscore-suffixed attribute, including its
        # private bookkeeping set; __init__ rebuilds that from the kwargs.
        return [name for name in super()._get_param_names() if name != "_params_to_validate"]

    def __sklearn_is_fitted__(self):
        return bool(self.initialized_) and hasattr(self, "module_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags



def shared_net_signature(init):
    """Give a net's ``__init__`` the full signature of :class:`_NetMixin`.

    The nets declare only the parameters that differ from the shared ones
    (the criterion default, ``classes``) and pass the rest on as
    ``**kwargs``; ``inspect.signature`` (used by scikit-learn's checks,
    ``help()`` and the docs) still shows every parameter with its default,
    the net's own ones first among the shared ones, extras before
    ``random_state``.
    """
    own = inspect.signature(init).parameters
    shared = inspect.signature(_NetMixin.__init__).parameters
    params = [own.get(name, param) for name, param in shared.items()]
    extras = [p for name, p in own.items() if name not in shared and p.kind != p.VAR_KEYWORD]
    at = next(i for i, p in enumerate(params) if p.name == "random_state")
    params[at:at] = extras
    init.__signature__ = inspect.Signature(params)
    return init

def _encoded_accuracy(net, X, y):
    """Validation accuracy on the encoded labels skorch's datasets hold."""
    proba = net.predict_proba(X)
    return float(np.mean(np.argmax(proba, axis=1) == to_numpy(y).reshape(-1)))


@fill_net_doc
class NeuralNetClassifier(_NetMixin, skorch.NeuralNetClassifier):
    """A skorch classifier with scikit-learn defaults and sample weights.

    A :class:`skorch.NeuralNetClassifier` that validates array input like
    scikit-learn, accepts any class labels, trains the logits of
    :class:`~weightstats.nn.MLP` with ``CrossEntropyLoss`` on shuffled
    batches, weights rows with ``fit(..., sample_weight=w)`` and repeats
    exactly with ``random_state``. Everything skorch offers (``module__*``
    parameters, callbacks, ``partial_fit``, dict or Dataset input, GPU via
    ``device="cuda"``) works unchanged.

    Parameters
    ----------
    {net_params}
    classes : array-like or None, default=None
        All class labels; by default those in ``y``.
    {random_state}
    **kwargs : dict
        Prefixed skorch parameters: ``module__*``, ``optimizer__*``,
        ``criterion__*``, ``iterator_train__*``, ``callbacks__*``.

    Attributes
    ----------
    {net_attributes}
    classes_ : ndarray of shape (n_classes,)
        The class labels; the network's outputs are in this order.

    See Also
    --------
    NeuralNetRegressor : The same for regression.

    Notes
    -----
    skorch's internal datasets hold the labels encoded as ``0 .. C-1``;
    custom scoring callbacks therefore see encoded targets.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from weightstats.nn import NeuralNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> labels = ["setosa", "versicolor", "virginica"]
    >>> net = NeuralNetClassifier(
    ...     module__hidden_units=(16,), optimizer__momentum=0.9, lr=0.05,
    ...     max_epochs=20, batch_size=16, random_state=0,
    ... )
    >>> model = make_pipeline(StandardScaler(), net).fit(X, [labels[i] for i in y])
    >>> model.predict(X[[0, 50, 100]])
    array(['setosa', 'versicolor', 'virginica'], dtype='<U10')
    >>> model.predict_proba(X[:2]).shape
    (2, 3)
    """

    @shared_net_signature
    def __init__(self, module=MLP, *, criterion=torch.nn.CrossEntropyLoss, classes=None, **kwargs):
        super().__init__(module, criterion=criterion, classes=classes, **kwargs)

    @property
    def _default_callbacks(self):
        callbacks = dict(super()._default_callbacks)
        callbacks["valid_acc"] = EpochScoring(
            _encoded_accuracy, name="valid_acc", lower_is_better=False
        )
        return list(callbacks.items())

    @property
    def classes_(self):
        """The class labels, in the order of the network's outputs.

        Returns
        -------
        classes : ndarray of shape (n_classes,)
            The labels.
        """
        if self.classes is not None and len(self.classes):
            return np.asarray(self.classes)
        try:
            return self.classes_inferred_
        except AttributeError as exc:
            raise AttributeError(
                f"{type(self).__name__} has no classes_ before fit (or was trained without y)."
            ) from exc

    def _validate_X_y(self, X, y, *, reset, classes=None):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32, ensure_min_samples=2)
        check_classification_targets(y)
        return X, self._set_classes_and_encode(y, reset=reset, classes=classes)

    def _set_classes_and_encode(self, y, *, reset, classes=None):
        y = np.asarray(y)
        if reset:
            if self.classes is not None and len(self.classes):
                labels = np.asarray(self.classes)
            elif classes is not None:
                labels = np.unique(np.asarray(classes))
            else:
                labels = np.unique(y)
            if len(labels) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes, but y has only "
                    f"the class {labels.tolist()}; declare all classes with classes= if later "
                    "calls to partial_fit bring the others."
                )
            self.classes_inferred_ = np.unique(labels)
        return self._encode_target(y)

    def _encode_target(self, y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        classes = self.classes_
        order = np.argsort(classes, kind="stable")
        sorted_classes = classes[order]
        positions = np.clip(np.searchsorted(sorted_classes, y), 0, len(classes) - 1)
        unknown = sorted_classes[positions] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not seen when the net was initialised: "
                f"{np.unique(y[unknown])[:5].tolist()}; pass all labels with classes=."
            )
        return order[positions].astype(np.int64)

    def _passthrough_fit_data(self, X, y, *, reset, classes=None):
        X, y = super()._passthrough_fit_data(X, y, reset=reset, classes=classes)
        if y is not None:
            y = to_numpy(y) if isinstance(y, torch.Tensor) else y
            check_classification_targets(y)
        if reset:
            self.__dict__.pop("classes_inferred_", None)
            if y is not None:
                self._set_classes_and_encode(y, reset=True, classes=classes)
        if y is not None:
            y = self._encode_target(y)
        return X, y

    def _inferred_module_params(self):
        params = super()._inferred_module_params()
        try:
            params["n_outputs"] = len(self.classes_)
        except AttributeError:
            pass
        return params

    def check_data(self, X, y):
        """Check that there are targets; keep the labels found by ``fit``.

        Parameters
        ----------
        X : input data
            Training inputs.
        y : target data or None
            Encoded targets.
        """
        known = self.__dict__.get("classes_inferred_")
        super().check_data(X, y)
        if known is not None:
            self.classes_inferred_ = known

    def decision_function(self, X):
        """Logits of each class (after any post-hoc adjustment).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Inputs.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            The logits; for two classes the difference ``z_1 - z_0``.
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        scores = np.concatenate(
            [to_numpy(self.adjust_logits(first_output(yp))) for yp in self.forward_iter(X)], axis=0
        )
        if scores.shape[1] == 2:
            # scikit-learn's binary convention: one score, positive for classes_[1].
            return scores[:, 1] - scores[:, 0]
        return scores

    def adjust_logits(self, logits):
        """Post-hoc change of the logits before ``predict`` (identity here).

        Parameters
        ----------
        logits : tensor of shape (n_samples, n_classes)
            Module output.

        Returns
        -------
        logits : tensor of shape (n_samples, n_classes)
            The adjusted logits.
        """
        return logits

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        nonlinearity = self._get_predict_nonlinearity()
        probas = [
            to_numpy(nonlinearity(self.adjust_logits(first_output(yp))))
            for yp in self.forward_iter(X, training=False)
        ]
        proba = np.concatenate(probas, axis=0).astype(np.float64)
        sums = proba.sum(axis=1, keepdims=True)
        if proba.size and np.all(np.abs(sums - 1.0) < 1e-4):
            # float32 softmax rows sum to 1 only to ~1e-7; make them exact.
            proba /= sums
        return proba

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


@fill_net_doc
class NeuralNetRegressor(_NetMixin, skorch.NeuralNetRegressor):
    """A skorch regressor with scikit-learn defaults and sample weights.

    A :class:`skorch.NeuralNetRegressor` that validates array input like
    scikit-learn, accepts 1-d targets (and returns 1-d predictions for
    them), trains :class:`~weightstats.nn.MLP` with ``MSELoss`` on shuffled
    batches, weights rows with ``fit(..., sample_weight=w)`` and repeats
    exactly with ``random_state``.

    Parameters
    ----------
    {net_params}
    {random_state}
    **kwargs : dict
        Prefixed skorch parameters (``module__*``, ``optimizer__*``, ...).

    Attributes
    ----------
    {net_attributes}
    n_outputs_ : int
        Number of targets.

    See Also
    --------
    NeuralNetClassifier : The same for classification.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn import NeuralNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> y = X @ [1.0, -2.0, 0.5]
    >>> net = NeuralNetRegressor(
    ...     module__hidden_units=(), lr=0.1, max_epochs=30, batch_size=32, random_state=0
    ... ).fit(X, y)
    >>> net.predict(X[:3]).shape
    (3,)
    >>> net.score(X, y) > 0.99
    True
    """

    @shared_net_signature
    def __init__(self, module=MLP, *, criterion=torch.nn.MSELoss, **kwargs):
        super().__init__(module, criterion=criterion, **kwargs)

    def _validate_X_y(self, X, y, *, reset, classes=None):
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=np.float32,
            multi_output=True,
            y_numeric=True,
            ensure_min_samples=2,
        )
        return X, self._set_outputs_and_encode(y, reset=reset)

    def _set_outputs_and_encode(self, y, *, reset):
        y = np.asarray(y)
        if reset:
            self._target_1d_ = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        return self._encode_target(y)

    def _encode_target(self, y):
        y = np.asarray(y, dtype=np.float32)
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity.")
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} targets but the net was fitted on {self.n_outputs_}."
            )
        return writable(y)

    def _passthrough_fit_data(self, X, y, *, reset, classes=None):
        X, y = super()._passthrough_fit_data(X, y, reset=reset, classes=classes)
        if y is not None and not isinstance(y, torch.Tensor):
            y = self._set_outputs_and_encode(y, reset=reset)
        return X, y

    def _inferred_module_params(self):
        params = super()._inferred_module_params()
        if hasattr(self, "n_outputs_"):
            params["n_outputs"] = self.n_outputs_
        return params

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dict, tensor or Dataset
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions; 1-d when the net was fitted on a 1-d target.
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        nonlinearity = self._get_predict_nonlinearity()
        y_pred = np.concatenate(
            [
                to_numpy(nonlinearity(first_output(yp)))
                for yp in self.forward_iter(X, training=False)
            ],
            axis=0,
        ).astype(np.float64)
        if getattr(self, "_target_1d_", False) and y_pred.ndim == 2 and y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    # Regressors have no predict_proba in scikit-learn (skorch's NeuralNet does).
    @available_if(lambda self: False)
    def predict_proba(self, X):  # noqa: D102
        raise AttributeError("use predict")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
