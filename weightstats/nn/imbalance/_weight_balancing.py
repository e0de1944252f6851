"""Weight balancing for long-tailed classification.

Two recipes, both in :class:`WeightBalancingClassifier`:

* ``recipe="one_stage"`` (Hasegawa & Sato, "Exploring Weight Balancing on
  Long-Tailed Recognition Problem", ICLR 2024; reference code
  HN410/Exploring-Weight-Balancing-on-Long-Tailed-Recognition-Problem):
  cross-entropy + weight decay (5e-3) + feature regularisation
  ``lambda * ||f(x)||^2 / 2`` (lambda = 0.01) with a fixed simplex-ETF
  classifier, then post-hoc *multiplicative* logit adjustment
  ``z_c * pi_c^(-tau)`` with tau = 0.65 (``utils/model_units.py``,
  ``utils/regularizers.py``). The estimator's default adjustment is the
  *additive* ``z_c - log pi_c`` instead, which measured better on
  long-tailed digits (user guide); ``logit_adjustment="multiplicative"``
  gives the paper's rule.
* ``recipe="two_stage"`` (Alshammari et al., "Long-Tailed Recognition via
  Weight Balancing", CVPR 2022; ShadeAlsha/LTR-weight-balancing): stage 1
  cross-entropy with weight decay 5e-3 (no feature regulariser); stage 2 freezes everything but the
  classifier and retrains it for 10 epochs with the class-balanced loss
  (beta = 0.9999), weight decay 0.1, cosine learning rate, and a MaxNorm
  projection of the classifier rows after every epoch to
  ``min ||w|| + 0.1 (max ||w|| - min ||w||)`` of the stage-1 norms.
"""

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.utils import to_numpy

from ...reweighting import class_balanced_weights
from .._core import DATA_KEY, WEIGHT_KEY, NeuralNetClassifier, batch_sample_weight, fill_net_doc
from ..layers import MLP, get_head

__all__ = ["WeightBalancingClassifier"]


def _max_norm_(weight, threshold):
    """Scale rows whose L2 norm exceeds ``threshold`` down to it (in place)."""
    with torch.no_grad():
        norms = weight.reshape(weight.shape[0], -1).norm(dim=1)
        scale = torch.where(norms > threshold, threshold / norms, torch.ones_like(norms))
        weight.mul_(scale.reshape(-1, *([1] * (weight.ndim - 1))))


@fill_net_doc
class WeightBalancingClassifier(NeuralNetClassifier):
    """Long-tailed classification by weight balancing (one- or two-stage).

    A :class:`NeuralNetClassifier` whose training and prediction follow the
    weight-balancing recipes (see the module notes and the user guide):

    * ``"one_stage"``: loss ``CE + feature_reg * ||f(x)||^2 / 2`` with
      weight decay 5e-3 and a fixed ETF classifier (the default
      :class:`MLP` gets ``head="etf"``, ``return_features=True``); at
      prediction the logits are adjusted by the training class
      frequencies ``pi``: additively by default, ``z_c - log pi_c``, or
      multiplicatively as in the paper, ``z_c * pi_c^(-0.65)``.
    * ``"two_stage"``: stage 1 is plain cross-entropy with weight decay 5e-3
      (trainable linear head); stage 2 retrains only ``module_.head`` for
      ``stage2_epochs`` with class-balanced weights
      (:func:`weightstats.reweighting.class_balanced_weights`), weight decay
      ``stage2_weight_decay``, a cosine learning rate, and the MaxNorm
      projection after every epoch.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=MLP
        The network. It must name its classifier layer ``head``; for
        ``feature_reg > 0`` it must return ``(logits, features)``.
    recipe : {"one_stage", "two_stage"}, default="one_stage"
        Which weight-balancing recipe.
    feature_reg : float or "auto", default="auto"
        Weight of the feature-norm regulariser ``||f(x)||^2 / 2`` (in the
        two-stage recipe it applies to stage 1 only). "auto" is the
        references' choice: 0.01 for the one-stage recipe, 0 for the
        two-stage recipe.
    logit_adjustment : {"auto", "multiplicative", "additive"} or None, \
            default="auto"
        Post-hoc adjustment at prediction: ``z * pi^(-tau)``,
        ``z - tau * log(pi)``, or none. "auto" is additive for the one-stage
        recipe (on long-tailed digits it beats plain cross-entropy, the
        paper's multiplicative rule does not; see the user guide) and none
        for the two-stage recipe, whose class-balanced second stage already
        adjusts.
    tau : float or "auto", default="auto"
        Strength of the adjustment; "auto" is 0.65 for multiplicative and
        1.0 for additive adjustment.
    cb_beta : float in [0, 1), default=0.9999
        Effective-number parameter of the stage-2 class-balanced loss.
    stage2_epochs : int, default=10
        Epochs of stage 2 (two-stage recipe).
    stage2_weight_decay : float, default=0.1
        Weight decay of stage 2.
    max_norm : float in [0, 1] or None, default=0.1
        MaxNorm threshold position between the smallest and largest stage-1
        classifier-row norm; ``None`` disables the projection.
    **kwargs : dict
        Every parameter of :class:`NeuralNetClassifier` (``lr``,
        ``max_epochs``, ``random_state``, ``module__*``, ...). Unless given
        as ``optimizer__*``, momentum 0.9 and weight decay 5e-3 are used
        when the optimizer accepts them (the papers' SGD settings).

    Attributes
    ----------
    {net_attributes}
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training rows per class, weighted by the sample weights rescaled to
        mean one (plain counts without weights).
    class_prior_ : ndarray of shape (n_classes,)
        ``class_counts_`` normalised: the ``pi`` of the logit adjustment.
    max_norm_threshold_ : float or None
        The stage-2 MaxNorm threshold on classifier-row norms.

    See Also
    --------
    weightstats.reweighting.LogitAdjustedClassifier : Additive adjustment
        for any scikit-learn classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from weightstats.nn import WeightBalancingClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> keep = np.concatenate([np.flatnonzero(y == c)[: 150 // (c + 1)] for c in range(10)])
    >>> net = WeightBalancingClassifier(max_epochs=5, lr=0.05, random_state=0)
    >>> net = net.fit(X[keep] / 16, y[keep])
    >>> net.class_counts_.astype(int)
    array([150,  75,  50,  37,  30,  25,  21,  18,  16,  15])
    >>> net.module_.head
    ETFHead(in_features=100, out_features=10, bias=True, fixed weight)
    """

    _extra_constraints = {
        **NeuralNetClassifier._extra_constraints,
        "recipe": [StrOptions({"one_stage", "two_stage"})],
        "feature_reg": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "logit_adjustment": [StrOptions({"auto", "multiplicative", "additive"}), None],
        "tau": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "cb_beta": [Interval(numbers.Real, 0, 1, closed="left")],
        "stage2_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "stage2_weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "max_norm": [Interval(numbers.Real, 0, 1, closed="both"), None],
    }

    def __init__(
        self,
        module=MLP,
        *,
        recipe="one_stage",
        feature_reg="auto",
        logit_adjustment="auto",
        tau="auto",
        cb_beta=0.9999,
        stage2_epochs=10,
        stage2_weight_decay=0.1,
        max_norm=0.1,
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.recipe = recipe
        self.feature_reg = feature_reg
        self.logit_adjustment = logit_adjustment
        self.tau = tau
        self.cb_beta = cb_beta
        self.stage2_epochs = stage2_epochs
        self.stage2_weight_decay = stage2_weight_decay
        self.max_norm = max_norm

    # ------------------------------------------------------------ settings
    def _adjustment(self):
        mode = self.logit_adjustment
        if mode == "auto":
            mode = "additive" if self.recipe == "one_stage" else None
        tau = self.tau
        if tau == "auto":
            tau = 0.65 if mode == "multiplicative" else 1.0
        return mode, tau

    def _feature_reg(self):
        if self.feature_reg == "auto":
            return 0.01 if self.recipe == "one_stage" else 0.0
        return self.feature_reg

    def _optimizer_defaults(self):
        # The SGD settings of both papers (ignored by optimizers without them).
        return {"momentum": 0.9, "weight_decay": 5e-3}

    def _inferred_module_params(self):
        params = super()._inferred_module_params()
        params["head"] = "etf" if self.recipe == "one_stage" else "linear"
        params["return_features"] = self._feature_reg() > 0
        return params

    # ------------------------------------------------------------- training
    def _train(self, X, y, **fit_params):
        if y is None:
            raise ValueError(f"{type(self).__name__} needs y to count the classes.")
        y = np.asarray(to_numpy(y)).reshape(-1)
        weights = batch_sample_weight(X)
        counts = np.bincount(y, weights=weights, minlength=len(self.classes_)).astype(float)
        first = not hasattr(self, "class_counts_") or len(self.history_) == 0
        self.class_counts_ = counts if first else self.class_counts_ + counts
        if np.any(self.class_counts_ <= 0):
            missing = self.classes_[self.class_counts_ <= 0].tolist()
            raise ValueError(
                f"classes {missing} have no training rows; logit adjustment and class-balanced "
                "weights need every class."
            )
        self.class_prior_ = self.class_counts_ / self.class_counts_.sum()
        self.max_norm_threshold_ = None
        self.stage_ = 1
        super()._train(X, y, **fit_params)
        if self.recipe == "two_stage" and self.stage2_epochs > 0:
            self._second_stage(X, y, **fit_params)

    def _second_stage(self, X, y, **fit_params):
        head = get_head(self.module_)
        head_params = [p for p in head.parameters() if p.requires_grad]
        if not head_params:
            raise ValueError("the classifier head has no trainable parameters (an ETF head?); "
                             "the two-stage recipe needs a linear head.")
        head_ids = {id(p) for p in head_params}
        frozen = [p for p in self.module_.parameters() if p.requires_grad and id(p) not in head_ids]
        # Class-balanced per-row weights times the user's (mean-one) weights.
        cb = class_balanced_weights(self.class_counts_, beta=self.cb_beta)
        user = batch_sample_weight(X)
        rows = cb[y] * (1.0 if user is None else np.asarray(user, dtype=np.float64))
        X2 = dict(X) if isinstance(X, dict) else {DATA_KEY: X}
        X2[WEIGHT_KEY] = rows.astype(np.float32)

        named = [(name, p) for name, p in self.module_.named_parameters() if id(p) in head_ids]
        args, kwargs = self.get_params_for_optimizer("optimizer", named)
        kwargs["weight_decay"] = self.stage2_weight_decay
        optimizer = self.optimizer(*args, **kwargs)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.stage2_epochs)
        if self.max_norm is not None:
            norms = head.weight.detach().reshape(head.weight.shape[0], -1).norm(dim=1)
            low, high = float(norms.min()), float(norms.max())
            self.max_norm_threshold_ = low + self.max_norm * (high - low)

        stage1_optimizer = self.optimizer_
        for p in frozen:
            p.requires_grad_(False)
        self.optimizer_ = optimizer
        self.stage_ = 2
        try:
            for _ in range(self.stage2_epochs):
                self.fit_loop(X2, y, epochs=1, **fit_params)
                if self.max_norm_threshold_ is not None:
                    # The reference projects once per epoch, after training.
                    _max_norm_(head.weight, self.max_norm_threshold_)
                scheduler.step()
        finally:
            for p in frozen:
                p.requires_grad_(True)
            self.optimizer_ = stage1_optimizer

    def on_epoch_end(self, net, **kwargs):
        """Record the stage of every epoch in the history.

        Parameters
        ----------
        net : NeuralNet
            This net.
        **kwargs : dict
            The epoch data skorch passes.
        """
        super().on_epoch_end(net, **kwargs)
        self.history.record("stage", getattr(self, "stage_", 1))

    def get_sample_losses(self, y_pred, y_true, X=None, training=False):
        """Cross-entropy plus ``feature_reg * ||f(x)||^2 / 2`` in stage 1.

        Parameters
        ----------
        y_pred : tensor or tuple of tensors
            ``(logits, features)`` from the module.
        y_true : tensor
            Encoded labels.
        X : tensor or dict, default=None
            The batch inputs.
        training : bool, default=False
            Whether this is a training step.

        Returns
        -------
        losses : tensor of shape (batch_size,)
            Per-row losses.
        """
        losses = super().get_sample_losses(y_pred, y_true, X=X, training=training)
        feature_reg = self._feature_reg()
        if feature_reg > 0 and getattr(self, "stage_", 1) == 1:
            if not isinstance(y_pred, (tuple, list)) or len(y_pred) < 2:
                raise ValueError(
                    "feature_reg > 0 needs the module to return (logits, features); use "
                    "weightstats.nn.MLP (return_features is set automatically) or set "
                    "feature_reg=0."
                )
            features = y_pred[1].reshape(y_pred[1].shape[0], -1)
            losses = losses + 0.5 * feature_reg * features.pow(2).sum(dim=1)
        return losses

    def adjust_logits(self, logits):
        """Post-hoc logit adjustment with the training class prior.

        Parameters
        ----------
        logits : tensor of shape (n_samples, n_classes)
            Module output.

        Returns
        -------
        logits : tensor of shape (n_samples, n_classes)
            ``z * pi^(-tau)`` (multiplicative), ``z - tau log pi``
            (additive), or ``z``.
        """
        mode, tau = self._adjustment()
        if mode is None or not hasattr(self, "class_prior_"):
            return logits
        log_prior = torch.as_tensor(np.log(self.class_prior_), dtype=logits.dtype,
                                    device=logits.device)
        if mode == "multiplicative":
            return logits * torch.exp(-tau * log_prior)
        return logits - tau * log_prior
