"""Epoch schedules of the callbacks: mutable seeded samplers and the epoch counter.

skorch builds the training DataLoader once per ``fit``; a callback changes
which rows it draws by updating a mutable sampler (passed as
``iterator_train__sampler``) between epochs. :class:`EpochsSinceFit`
tells a callback which epoch of the current ``fit`` / ``partial_fit`` call
is starting.
"""

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["EpochsSinceFit", "SeededSampler", "TrainingRun", "attach_sampler"]


class TrainingRun:
    """One ``fit`` / ``partial_fit`` call of a net, recorded while it trains.

    Parameters
    ----------
    first_epoch : int
        Epochs in the history when the call began.
    n_epochs : int
        Epochs the call trains (``epochs=`` if given, else ``max_epochs``).

    Attributes
    ----------
    first_loss : float or None
        The loss of the call's first training batch.
    diverged : bool
        Whether a divergence warning was issued in this call.
    """

    def __init__(self, first_epoch, n_epochs):
        self.first_epoch = int(first_epoch)
        self.n_epochs = int(n_epochs)
        self.first_loss = None
        self.diverged = False


class EpochsSinceFit:
    """Which epoch of the current ``fit`` / ``partial_fit`` call is running.

    A callback creates one in ``on_train_begin`` and reads :meth:`epoch` in
    ``on_epoch_begin`` (0 in the first epoch of the call); ``n_epochs`` is
    the number of epochs the call trains. The weightstats nets record both
    for every call (``partial_fit(X, y, epochs=6)`` counts 6, whatever
    ``max_epochs``); for other skorch nets the count starts at
    ``on_train_begin`` and ``n_epochs`` is ``max_epochs``.

    Parameters
    ----------
    net : NeuralNet
        The net whose training call is starting.
    """

    def __init__(self, net):
        run = getattr(net, "_training_run_", None)
        if run is None:
            self.first_epoch, self.n_epochs = len(net.history), int(net.max_epochs)
        else:
            self.first_epoch, self.n_epochs = run.first_epoch, run.n_epochs

    def epoch(self, net):
        """The 0-based index of the running epoch within the training call.

        Parameters
        ----------
        net : NeuralNet
            The net being trained (its history already has the row of the
            running epoch).

        Returns
        -------
        epoch : int
            Epochs completed since the call began.
        """
        return len(net.history) - 1 - self.first_epoch


class SeededSampler(Sampler):
    """Base of the mutable samplers: a NumPy generator the callback seeds.

    The callbacks that drive a sampler draw its seed from the torch RNG when
    training starts, so the net's ``random_state`` fixes every draw.
    """

    def __init__(self):
        self._rng = np.random.default_rng()

    def seed(self, seed):
        """Re-seed the sampler's generator.

        Parameters
        ----------
        seed : int or None
            Seed of the NumPy generator.
        """
        self._rng = np.random.default_rng(seed)


def attach_sampler(net, sampler_cls, callback):
    """The net's training sampler, checked and seeded from the torch RNG.

    Parameters
    ----------
    net : NeuralNet
        The net being trained.
    sampler_cls : type
        The sampler class the callback drives.
    callback : object
        The callback (named in the error message).

    Returns
    -------
    sampler : SeededSampler
        The sampler the DataLoader iterates.
    seed : int
        The seed given to it.
    """
    sampler = net.get_params_for("iterator_train").get("sampler")
    if not isinstance(sampler, sampler_cls):
        raise ValueError(
            f"{type(callback).__name__} works through the training loader's sampler: pass "
            f"iterator_train__sampler={sampler_cls.__name__}() to the net."
        )
    seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    sampler.seed(seed)
    return sampler, seed

