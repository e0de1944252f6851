"""A conditional DDPM for tabular data, trained and sampled with classifier-free guidance."""

import numbers
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import skorch
import torch
from sklearn.base import DensityMixin
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
from skorch.dataset import Dataset, unpack_data
from skorch.utils import is_dataset, to_tensor
from torch.utils.data import DataLoader

from ...utils import check_sample_weight
from .._core import DATA_KEY, WEIGHT_KEY, batch_features, batch_sample_weight
from .._core._data import warn_if_unscaled
from .._core._net import _NetMixin
from ._denoiser import ConditionalDenoiser
from ._guidance import cfg_combine
from ._schedules import diffusion_loss_weights, noise_schedule

__all__ = ["ConditionalDiffusion"]

# Rows per forward pass when scoring or sampling (bounds memory, not results).
_CHUNK = 65536
# Fixed Monte-Carlo draws of (t, noise) for score_samples (common random numbers).
_N_SCORE_DRAWS = 32
_SCORE_SEED = 20240417


class ConditionalDiffusion(DensityMixin, _NetMixin, skorch.NeuralNet):
    """A conditional DDPM for tabular data with classifier-free guidance.

    ``fit(X, y)`` trains a noise-prediction network on the standardised
    rows of ``X`` (the DDPM forward process of :func:`noise_schedule`),
    conditioned on the class labels ``y``; each training row loses its
    label with probability ``p_uncond`` so that the same network also
    learns the unconditional model (Ho & Salimans, 2022). ``fit(X)``
    without labels trains an unconditional model. The per-row loss is
    weighted by :func:`diffusion_loss_weights` (``loss_weighting``) and by
    ``sample_weight``.

    :meth:`sample` draws new rows by DDIM (``eta=0``, deterministic given
    the starting noise) or DDPM-like (``eta=1``) steps, guided by a constant
    weight or a :class:`GuidanceSchedule`; both branches of the guidance are
    evaluated in one batched forward pass. :meth:`score` is the negative
    denoising loss (higher is better), for model selection.

    A skorch net: ``module__*``, ``optimizer__*``, callbacks, ``partial_fit``,
    ``warm_start`` and ``device="cuda"`` work as in skorch.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=ConditionalDenoiser
        The prediction network, called as ``module(x_t, t, labels)`` with
        integer labels ``0 .. n_classes`` (``n_classes`` = no label). Its
        constructor gets ``n_features`` and ``n_classes`` from the data when
        it takes them. A ``forward_guided(x_t, t, labels)`` method returning
        ``(uncond, cond)`` is used for guided sampling when present;
        otherwise the two branches are stacked into one batch.
    p_uncond : float in [0, 1), default=0.1
        Probability of replacing a training row's label by the null label.
    num_train_timesteps : int, default=1000
        Number of diffusion steps ``T``.
    beta_schedule : {"linear", "scaled_linear", "squaredcos_cap_v2", "cosine"}, \
            default="linear"
        The noise schedule (see :func:`noise_schedule`).
    beta_start, beta_end : float, default=0.0001, 0.02
        Range of the linear schedules.
    prediction_type : {"epsilon", "v_prediction", "sample"}, default="epsilon"
        What the network predicts.
    loss_weighting : {"constant", "min_snr", "debias"}, default="constant"
        Timestep weighting of the loss (see :func:`diffusion_loss_weights`).
    snr_gamma : float, default=5.0
        ``gamma`` of ``"min_snr"``.
    loss_weight_clamp : float or None, default=None
        Upper bound on the timestep weights (a deviation from the papers;
        the debias weight reaches about 157 at ``t = T - 1``).
    standardize : bool, default=True
        Whether to train on ``(X - mean) / std`` (weighted by
        ``sample_weight``) and map samples back; DDPM schedules assume data
        of unit scale.
    criterion : torch loss class, default=torch.nn.MSELoss
        Elementwise loss between prediction and target (evaluated with
        ``reduction="none"``, averaged over features).
    optimizer : torch optimizer class, default=torch.optim.Adam
        Optimizer; options via ``optimizer__*``.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=100
        Passes over the data per ``fit``.
    batch_size : int, default=256
        Rows per training step.
    iterator_train, iterator_valid : DataLoader class, default=DataLoader
        Loaders; options via ``iterator_train__*`` (training batches are
        shuffled).
    dataset : skorch Dataset class, default=skorch.dataset.Dataset
        Wraps the standardised rows and the encoded labels.
    train_split : callable or None, default=None
        Internal validation split (``None`` trains on all rows).
    callbacks : list of skorch callbacks or None, default=None
        Training extras.
    warm_start : bool, default=False
        Whether ``fit`` continues from the current parameters.
    verbose : int, default=0
        1 prints skorch's table of epochs.
    device : str or None, default="cpu"
        Torch device, e.g. ``"cuda"``.
    compile : bool, default=False
        Whether to ``torch.compile`` the network.
    use_caching : bool or "auto", default="auto"
        Whether skorch's scoring callbacks reuse forward passes.
    torch_load_kwargs : dict or None, default=None
        Passed to ``torch.load`` by skorch's ``load_params``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order, timesteps, noise and label
        dropout inside a forked torch RNG for each ``fit``.
    **kwargs : dict
        Prefixed skorch parameters: ``module__hidden_units``,
        ``optimizer__weight_decay``, ``iterator_train__*``, ``callbacks__*``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit`` (empty for an unconditional model).
    n_classes_ : int
        Number of classes.
    alphas_cumprod_ : ndarray of shape (num_train_timesteps,)
        The noise schedule ``abar_t`` (float64).
    mean_, scale_ : ndarray of shape (`n_features_in_`,)
        Standardisation of the features (0 and 1 with ``standardize=False``).
    history_ : skorch.history.History
        Per-epoch records (``train_loss``, timings).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    GuidanceSchedule : Guidance weights that vary over the sampling steps.
    diffusion_loss_weights : The timestep weights of ``loss_weighting``.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.nn.diffusion import ConditionalDiffusion, GuidanceSchedule
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> X = rng.normal(size=(400, 2)) * 0.3 + np.where(y[:, None] == 1, 2.0, -2.0)
    >>> model = ConditionalDiffusion(
    ...     module__hidden_units=(32, 32), max_epochs=50, batch_size=50, lr=3e-3,
    ...     random_state=0,
    ... ).fit(X, y)
    >>> samples = model.sample(200, y=1, guidance=GuidanceSchedule("linear", 2.0),
    ...                        steps=20, random_state=0)
    >>> samples.shape
    (200, 2)
    >>> bool(np.mean(np.all(samples > 0, axis=1)) > 0.9)  # near class 1's centre (2, 2)
    True
    """

    _extra_constraints = {
        **_NetMixin._extra_constraints,
        "p_uncond": [Interval(numbers.Real, 0, 1, closed="left")],
        "num_train_timesteps": [Interval(numbers.Integral, 2, None, closed="left")],
        "beta_schedule": [
            StrOptions({"linear", "scaled_linear", "squaredcos_cap_v2", "cosine"})
        ],
        "beta_start": [Interval(numbers.Real, 0, 1, closed="neither")],
        "beta_end": [Interval(numbers.Real, 0, 1, closed="neither")],
        "prediction_type": [StrOptions({"epsilon", "v_prediction", "sample"})],
        "loss_weighting": [StrOptions({"constant", "min_snr", "debias"})],
        "snr_gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "loss_weight_clamp": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        module=ConditionalDenoiser,
        *,
        p_uncond=0.1,
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.0001,
        beta_end=0.02,
        prediction_type="epsilon",
        loss_weighting="constant",
        snr_gamma=5.0,
        loss_weight_clamp=None,
        standardize=True,
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=100,
        batch_size=256,
        iterator_train=DataLoader,
        iterator_valid=DataLoader,
        dataset=Dataset,
        train_split=None,
        callbacks=None,
        warm_start=False,
        verbose=0,
        device="cpu",
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        random_state=None,
        **kwargs,
    ):
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
            predict_nonlinearity=None,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            compile=compile,
            use_caching=use_caching,
            torch_load_kwargs=torch_load_kwargs,
            random_state=random_state,
            **kwargs,
        )
        self.p_uncond = p_uncond
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.prediction_type = prediction_type
        self.loss_weighting = loss_weighting
        self.snr_gamma = snr_gamma
        self.loss_weight_clamp = loss_weight_clamp
        self.standardize = standardize

    def _get_param_names(self):
        # predict_nonlinearity is fixed (there is nothing to predict).
        return [name for name in super()._get_param_names() if name != "predict_nonlinearity"]

    # --------------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Initialise (unless ``warm_start``) and train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,) or None, default=None
            Class labels to condition on; ``None`` trains an unconditional
            model.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss (and in the
            standardisation); only their ratios matter.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
            The trained model.
        """
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)

    def partial_fit(self, X, y=None, classes=None, sample_weight=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,) or None, default=None
            Class labels (from the classes of the first call).
        classes : array-like or None, default=None
            All labels (first call only); by default those in ``y``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
            The trained model.
        """
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight,
                                   **fit_params)

    # ------------------------------------------------------------------ data
    def _prepare_fit(self, X, y, sample_weight, *, reset, classes=None):
        """Validate, standardise and encode the training data."""
        self._check_extra_params()
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if not sp.issparse(X) and (isinstance(X, Mapping) or is_dataset(X)):
            raise TypeError(
                f"{type(self).__name__} takes X as an array-like of shape (n_samples, "
                f"n_features), not a {type(X).__name__}."
            )
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        if y is None:
            X = validate_data(self, X, reset=reset, dtype=np.float64, ensure_min_samples=2)
        else:
            X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, ensure_min_samples=2)
            check_classification_targets(y)
        weights = check_sample_weight(sample_weight, X, dtype=np.float64)
        if reset:
            self._set_schedule()
            self._set_classes(y, classes)
            self._set_standardization(X, weights)
        labels = self._encode_labels(y, n_samples=X.shape[0])
        X = ((X - self.mean_) / self.scale_).astype(np.float32)
        warn_if_unscaled(X)
        self._input_width_ = X.shape[1]
        if sample_weight is None:
            return X, labels
        # Mean-one weights: the loss is the weighted mean over the rows.
        return {DATA_KEY: X, WEIGHT_KEY: (weights / weights.mean()).astype(np.float32)}, labels

    def _set_schedule(self):
        if self.beta_schedule in ("linear", "scaled_linear") and self.beta_start > self.beta_end:
            raise ValueError(
                f"beta_start ({self.beta_start}) must not exceed beta_end ({self.beta_end})."
            )
        self.alphas_cumprod_ = noise_schedule(
            self.beta_schedule, self.num_train_timesteps,
            beta_start=self.beta_start, beta_end=self.beta_end,
        ).numpy()
        # Fails here, before training, when a weight is infinite.
        diffusion_loss_weights(
            np.arange(self.num_train_timesteps), self.alphas_cumprod_,
            scheme=self.loss_weighting, prediction_type=self.prediction_type,
            snr_gamma=self.snr_gamma, clamp=self.loss_weight_clamp,
        )

    def _set_classes(self, y, classes):
        if y is None:
            self.classes_ = np.array([])
        elif classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
        else:
            self.classes_ = np.unique(y)
        self.n_classes_ = len(self.classes_)

    def _set_standardization(self, X, weights):
        n_features = X.shape[1]
        if not self.standardize:
            self.mean_, self.scale_ = np.zeros(n_features), np.ones(n_features)
            return
        self.mean_ = np.average(X, axis=0, weights=weights)
        std = np.sqrt(np.average((X - self.mean_) ** 2, axis=0, weights=weights))
        # Constant features keep scale 1, as in StandardScaler.
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)

    def _encode_labels(self, y, n_samples):
        """Labels as indices into ``classes_``; None gives the null label."""
        if y is None:
            return np.full(n_samples, self.n_classes_, dtype=np.int64)
        y = np.asarray(y)
        if y.ndim == 0:
            y = np.full(n_samples, y.item())
        y = y.reshape(-1)
        if y.shape[0] != n_samples:
            raise ValueError(f"y has {y.shape[0]} labels for {n_samples} rows.")
        if self.n_classes_ == 0:
            raise ValueError(
                f"{type(self).__name__} was fitted without labels (an unconditional model); "
                "pass y=None."
            )
        positions = np.clip(np.searchsorted(self.classes_, y), 0, self.n_classes_ - 1)
        unknown = self.classes_[positions] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not seen in fit: {np.unique(y[unknown])[:5].tolist()}; "
                f"known labels: {self.classes_[:10].tolist()}."
            )
        return positions.astype(np.int64)

    def _validate_X(self, X):
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _inferred_module_params(self):
        params = super()._inferred_module_params()
        if hasattr(self, "n_classes_"):
            params["n_classes"] = self.n_classes_
        return params

    # --------------------------------------------------------------- torch
    def _schedule_tensors(self):
        """``alphas_cumprod`` and the timestep loss weights on the device (float32)."""
        key = (self.device, id(self.alphas_cumprod_), self.loss_weighting, self.prediction_type,
               self.snr_gamma, self.loss_weight_clamp)
        cache = self.__dict__.get("_tensor_cache")
        if cache is None or cache[0] != key:
            abar = torch.as_tensor(self.alphas_cumprod_, dtype=torch.float64)
            weights = diffusion_loss_weights(
                torch.arange(abar.shape[0]), abar, scheme=self.loss_weighting,
                prediction_type=self.prediction_type, snr_gamma=self.snr_gamma,
                clamp=self.loss_weight_clamp,
            )
            cache = (key, abar.float().to(self.device), weights.float().to(self.device))
            self.__dict__["_tensor_cache"] = cache
        return cache[1], cache[2]

    def _target(self, x0, noise, abar):
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return x0
        return abar.sqrt() * noise - (1.0 - abar).sqrt() * x0

    def _to_epsilon(self, output, x_t, abar):
        """The noise implied by a prediction of ``prediction_type``."""
        if self.prediction_type == "epsilon":
            return output
        if self.prediction_type == "sample":
            return (x_t - abar.sqrt() * output) / (1.0 - abar).sqrt()
        return abar.sqrt() * output + (1.0 - abar).sqrt() * x_t

    def _to_sample(self, output, x_t, abar):
        """The ``x_0`` implied by a prediction of ``prediction_type``."""
        if self.prediction_type == "epsilon":
            return (x_t - (1.0 - abar).sqrt() * output) / abar.sqrt()
        if self.prediction_type == "sample":
            return output
        return abar.sqrt() * x_t - (1.0 - abar).sqrt() * output

    def _denoising_loss(self, batch, training):
        """Weighted denoising loss of a batch: random t, noise and label dropout."""
        Xi, yi = unpack_data(batch)
        x0 = to_tensor(batch_features(Xi), device=self.device).float()
        labels = to_tensor(yi, device=self.device).long().reshape(-1)
        abar_all, weight_all = self._schedule_tensors()
        n = x0.shape[0]
        t = torch.randint(0, abar_all.shape[0], (n,), device=x0.device)
        noise = torch.randn_like(x0)
        abar = abar_all[t].reshape(-1, 1)
        x_t = abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise
        if training and self.p_uncond > 0:
            drop = torch.rand(n, device=x0.device) < self.p_uncond
            labels = torch.where(drop, torch.full_like(labels, self.n_classes_), labels)
        output = self.module_(x_t, t, labels)
        # The timestep weights join the row weights; get_loss averages
        # weight * (criterion per row).
        weights = weight_all[t]
        row_weight = batch_sample_weight(Xi)
        if row_weight is not None:
            weights = weights * to_tensor(row_weight, device=weights.device).float().reshape(-1)
        target = self._target(x0, noise, abar)
        return self.get_loss(output, target, X={WEIGHT_KEY: weights}, training=training), output

    def train_step_single(self, batch, **fit_params):
        """One denoising step on a batch (random timesteps and noise).

        Parameters
        ----------
        batch : tuple
            ``(X, labels)`` from the training loader.
        **fit_params : dict
            Unused (part of skorch's signature).

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": network output}``.
        """
        self._set_training(True)
        loss, output = self._denoising_loss(batch, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": output}

    def validation_step(self, batch, **fit_params):
        """The denoising loss of a validation batch (no label dropout).

        Parameters
        ----------
        batch : tuple
            ``(X, labels)`` from the validation loader.
        **fit_params : dict
            Unused.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": network output}``.
        """
        self._set_training(False)
        with torch.no_grad():
            loss, output = self._denoising_loss(batch, training=False)
        return {"loss": loss, "y_pred": output}

    # ------------------------------------------------------------- scoring
    def score_samples(self, X, y=None):
        """Negative denoising loss of each row (higher = better modelled).

        The loss is the noise-prediction error ``mean((eps - eps_hat)^2)``
        (whatever ``prediction_type``, converted to noise; no timestep
        weighting, so models trained with different weightings compare),
        averaged over 32 fixed draws of ``(t, eps)``: timesteps evenly
        spread over ``[0, T)`` and the same noise vectors for every row.
        The result is therefore deterministic and each row's value depends
        on that row only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows.
        y : array-like of shape (n_samples,), label or None, default=None
            Labels to condition on; ``None`` scores under the unconditional
            model.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the average squared noise-prediction error (in
            standardised units).
        """
        X = self._validate_X(X)
        if y is None and self.n_classes_ > 0 and self.p_uncond == 0:
            raise ValueError(
                "the unconditional model was not trained (p_uncond=0); pass the labels y."
            )
        labels = self._encode_labels(y, n_samples=X.shape[0])
        abar_all, _ = self._schedule_tensors()
        T = abar_all.shape[0]
        generator = torch.Generator().manual_seed(_SCORE_SEED)
        draws = torch.randn(_N_SCORE_DRAWS, X.shape[1], generator=generator).to(self.device)
        timesteps = ((torch.arange(_N_SCORE_DRAWS) + 0.5) * T / _N_SCORE_DRAWS).long()
        timesteps = timesteps.to(self.device)
        self._set_training(False)
        scores = []
        rows_per_chunk = max(1, _CHUNK // _N_SCORE_DRAWS)
        with torch.no_grad():
            for start in range(0, X.shape[0], rows_per_chunk):
                x0 = torch.as_tensor(X[start : start + rows_per_chunk], device=self.device)
                lab = torch.as_tensor(labels[start : start + rows_per_chunk], device=self.device)
                n = x0.shape[0]
                x0 = x0.repeat_interleave(_N_SCORE_DRAWS, dim=0)
                noise = draws.repeat(n, 1)
                t = timesteps.repeat(n)
                abar = abar_all[t].reshape(-1, 1)
                x_t = abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise
                output = self.module_(x_t, t, lab.repeat_interleave(_N_SCORE_DRAWS))
                err = (self._to_epsilon(output, x_t, abar) - noise) ** 2
                scores.append(-err.mean(dim=1).reshape(n, _N_SCORE_DRAWS).mean(dim=1).cpu())
        return torch.cat(scores).double().numpy()

    def evaluate_losses(self, X, y=None):
        """Denoising loss of each row: ``-score_samples(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows.
        y : array-like of shape (n_samples,), label or None, default=None
            Labels; ``None`` evaluates the unconditional model.

        Returns
        -------
        losses : ndarray of shape (n_samples,)
            The average squared noise-prediction error of each row.
        """
        return -self.score_samples(X, y)

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean of :meth:`score_samples` (negative denoising loss).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows.
        y : array-like of shape (n_samples,) or None, default=None
            Labels; ``None`` scores under the unconditional model.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        score : float
            Higher is better.
        """
        scores = self.score_samples(X, y)
        weights = check_sample_weight(sample_weight, scores.reshape(-1, 1))
        return float(np.average(scores, weights=weights))

    # ------------------------------------------------------------ sampling
    def sample(self, n_samples=1, y=None, *, guidance=1.0, steps=50, eta=0.0,
               random_state=None):
        """Draw new rows, optionally guided towards the class ``y``.

        DDIM sampling (Song et al., 2021) over ``steps`` evenly spaced
        timesteps ``t_i = (steps - 1 - i) * (T // steps)`` (diffusers'
        ``DDIMScheduler`` with ``timestep_spacing="leading"``,
        ``set_alpha_to_one=True`` and no clipping). At each step the
        prediction is ``cfg_combine(uncond, cond, omega_i)``; both branches
        come from one batched forward pass.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        y : label, array-like of shape (n_samples,) or None, default=None
            Class of each row (one label for all rows, or one per row);
            ``None`` samples the unconditional model.
        guidance : float, GuidanceSchedule, callable or array-like, default=1.0
            Guidance weight ``omega``: a number (constant; 1 = no guidance,
            the conditional model alone), a :class:`GuidanceSchedule` or any
            callable ``(step_index, num_steps) -> omega``, or the weights
            of the ``steps`` steps (first = noisiest). Ignored when ``y``
            is None.
        steps : int, default=50
            Number of sampling steps (at most ``num_train_timesteps``).
        eta : float in [0, 1], default=0.0
            DDIM noise: 0 is deterministic DDIM, 1 the DDPM posterior
            variance.
        random_state : int, RandomState instance or None, default=None
            Seeds the starting noise (and the step noise for ``eta > 0``).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            The samples, in the units of the training data.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        T = len(self.alphas_cumprod_)
        if not isinstance(steps, numbers.Integral) or not 1 <= steps <= T:
            raise ValueError(f"steps must be an integer in [1, {T}]; got {steps!r}.")
        if not isinstance(eta, numbers.Real) or not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1]; got {eta!r}.")
        conditional = y is not None
        if not conditional and self.n_classes_ > 0 and self.p_uncond == 0:
            raise ValueError(
                "the unconditional model was not trained (p_uncond=0); pass a class y."
            )
        labels = torch.as_tensor(self._encode_labels(y, n_samples), device=self.device)
        omegas = self._guidance_weights(guidance, steps) if conditional else np.ones(steps)
        if conditional and np.any(omegas != 1) and self.p_uncond == 0:
            raise ValueError(
                "guidance needs the unconditional model, which was not trained (p_uncond=0); "
                "refit with p_uncond > 0 or sample with guidance=1."
            )
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator(device=self.device).manual_seed(seed)
        abar_all, _ = self._schedule_tensors()
        ratio = T // steps
        timesteps = np.arange(steps)[::-1] * ratio
        x = torch.randn(n_samples, self.n_features_in_, generator=generator, device=self.device)
        self._set_training(False)
        with torch.no_grad():
            for i, t in enumerate(timesteps):
                abar = abar_all[t]
                abar_prev = abar_all[t - ratio] if t - ratio >= 0 else torch.ones_like(abar)
                output = self._guided_output(x, int(t), labels, float(omegas[i]), conditional)
                x0_hat = self._to_sample(output, x, abar)
                eps_hat = self._to_epsilon(output, x, abar)
                variance = (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)
                std = eta * variance.sqrt()
                x = abar_prev.sqrt() * x0_hat + (1 - abar_prev - std**2).sqrt() * eps_hat
                if eta > 0:
                    x = x + std * torch.randn(x.shape, generator=generator, device=self.device)
        samples = x.double().cpu().numpy() * self.scale_ + self.mean_
        if not np.all(np.isfinite(samples)):
            raise ValueError(
                "sampling produced non-finite values; the guidance weight may be too large "
                "for this model."
            )
        return samples

    def _guidance_weights(self, guidance, steps):
        if isinstance(guidance, numbers.Real) and not isinstance(guidance, bool):
            omegas = np.full(steps, float(guidance))
        elif callable(guidance):
            omegas = np.array([float(guidance(i, steps)) for i in range(steps)])
        else:
            omegas = np.asarray(guidance, dtype=np.float64).reshape(-1)
            if omegas.shape[0] != steps:
                raise ValueError(
                    f"guidance has {omegas.shape[0]} weights for {steps} steps; pass one per step."
                )
        if not np.all(np.isfinite(omegas)):
            raise ValueError("guidance weights contain NaN or infinity.")
        return omegas

    def _guided_output(self, x, t, labels, omega, conditional):
        """The (guided) network output at timestep ``t`` for all rows."""
        outputs = []
        for start in range(0, x.shape[0], _CHUNK):
            xc, lc = x[start : start + _CHUNK], labels[start : start + _CHUNK]
            tc = torch.full((xc.shape[0],), t, device=x.device, dtype=torch.long)
            if not conditional or omega == 1:
                outputs.append(self.module_(xc, tc, lc))
                continue
            guided = getattr(self.module_, "forward_guided", None)
            if guided is not None:
                uncond, cond = guided(xc, tc, lc)
            else:
                null = torch.full_like(lc, self.n_classes_)
                out = self.module_(torch.cat([xc, xc]), torch.cat([tc, tc]), torch.cat([null, lc]))
                uncond, cond = out.chunk(2)
            outputs.append(cfg_combine(uncond, cond, omega))
        return torch.cat(outputs)

    # ----------------------------------------------------- sklearn surface
    # A generative model predicts nothing; skorch's predict would call the
    # network with the wrong arguments.
    @available_if(lambda self: False)
    def predict(self, X):  # noqa: D102
        raise AttributeError("use sample")

    @available_if(lambda self: False)
    def predict_proba(self, X):  # noqa: D102
        raise AttributeError("use sample")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_tensor_cache", None)
        return state
