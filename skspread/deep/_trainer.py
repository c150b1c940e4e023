"""Training loop of the delta-VAE: batches, optimisers, device, history.

The trainer plays the learned spread's max-min game: the model (encoder and
generator) descends the negative ELBO on every batch; after a warm-up, on
every ``spread_step_interval``-th batch the spread parameters ascend the
spread divergence bound, -H(k) plus that same negative ELBO. Both players'
gradients come from one evaluation of the loss (simultaneous gradient
descent-ascent), so a spread step costs no extra pass through the networks.
"""

import copy
import math
import time
import warnings

import torch
from torch.optim.adam import adam as adam_update
from tqdm.auto import tqdm

from ._device import make_generator, restore_generator


class Adam:
    """Adam (Kingma and Ba, 2015) on a list of parameters, stepped by torch's functional Adam.

    The update is torch's own (the function ``torch.optim.adam.adam``) with
    the defaults of ``torch.optim.Adam``, so the steps are those of
    ``torch.optim.Adam``.
    That class is not used because its methods import ``torch._dynamo``
    (and with it sympy) on their first call: about 67 MiB of resident memory
    that training does not otherwise need. The interface is the part of
    ``torch.optim.Adam`` that the trainer uses: ``param_groups`` (whose
    ``'lr'`` may be changed), ``zero_grad``, ``step``, ``state_dict`` and
    ``load_state_dict``.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
    lr : float
        Step size.
    """

    def __init__(self, params, lr):
        self.param_groups = [
            {"params": list(params), "lr": lr, "betas": (0.9, 0.999), "eps": 1e-8}
        ]
        # Per parameter (by position): its step count and moment estimates.
        self.state = {}

    def zero_grad(self, set_to_none=True):
        for parameter in self.param_groups[0]["params"]:
            parameter.grad = None

    @torch.no_grad()
    def step(self):
        group = self.param_groups[0]
        parameters, gradients, averages, squares, steps = [], [], [], [], []
        for index, parameter in enumerate(group["params"]):
            if parameter.grad is None:
                continue
            if index not in self.state:
                # As torch.optim.Adam: the step count in a CPU scalar of the
                # default floating dtype, the moments shaped as the parameter.
                self.state[index] = {
                    "step": torch.tensor(0.0, dtype=torch.get_default_dtype()),
                    "exp_avg": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(
                        parameter, memory_format=torch.preserve_format
                    ),
                }
            state = self.state[index]
            parameters.append(parameter)
            gradients.append(parameter.grad)
            averages.append(state["exp_avg"])
            squares.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        adam_update(
            parameters,
            gradients,
            averages,
            squares,
            [],
            steps,
            has_complex=any(torch.is_complex(p) for p in parameters),
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=0.0,
            eps=group["eps"],
            maximize=False,
        )

    def state_dict(self):
        """The step counts, moments and hyper-parameters (references, not copies)."""
        groups = [{k: v for k, v in group.items() if k != "params"} for group in self.param_groups]
        return {
            "state": {index: dict(state) for index, state in self.state.items()},
            "param_groups": groups,
        }

    def load_state_dict(self, state_dict):
        """Return to a :meth:`state_dict` (its tensors are used, not copied)."""
        self.state = {int(index): dict(state) for index, state in state_dict["state"].items()}
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group.update({k: v for k, v in saved.items() if k != "params"})


class Trainer:
    """Optimises a :class:`~skspread.deep._model.DeltaVAEModule`.

    Parameters
    ----------
    model : DeltaVAEModule
        Already on ``device``.
    batch_size : int
    learning_rate : float
        Adam step size of the model.
    spread_learning_rate : float
        Adam step size of the learned spread (unused for a fixed spread).
    device : torch.device
    seed : int
        Seed of the generator that draws batches and noise.
    spread_warmup_epochs : int, default=1
        Epochs of model-only training before the spread starts to learn
        (the divergence estimate is meaningless for a random model).
    spread_step_interval : int, default=4
        The spread steps on every this many batches.
    """

    #: Set during a data-parallel fit (see ``_distributed.data_parallel``):
    #: it gives each process its share of a batch and averages gradients.
    data_parallel = None

    def __init__(
        self,
        model,
        *,
        batch_size,
        learning_rate,
        spread_learning_rate,
        device,
        seed,
        spread_warmup_epochs=1,
        spread_step_interval=4,
    ):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.spread_warmup_epochs = spread_warmup_epochs
        self.spread_step_interval = spread_step_interval
        self.model_optimizer = Adam(model.model_parameters(), lr=learning_rate)
        spread_parameters = model.spread_parameters()
        self.spread_optimizer = (
            Adam(spread_parameters, lr=spread_learning_rate)
            if spread_parameters
            else None
        )
        self.generator = make_generator(device, seed)
        self.n_epochs_done = 0

    def set_learning_rates(self, learning_rate, spread_learning_rate):
        """Apply changed step sizes (``set_params`` before a warm start)."""
        for group in self.model_optimizer.param_groups:
            group["lr"] = learning_rate
        if self.spread_optimizer is not None:
            for group in self.spread_optimizer.param_groups:
                group["lr"] = spread_learning_rate

    def _rows(self, X, indices):
        """The batch of rows ``indices`` of ``X`` (this process's share in a data-parallel fit)."""
        if self.data_parallel is not None:
            return self.data_parallel.rows(X, indices)
        return X[indices]

    def _batch_loss(self, batch):
        """The loss to descend on ``batch``: its mean negative ELBO.

        In a data-parallel fit, this process's share, weighted so that the
        averaged gradients are those of the whole batch.
        """
        if self.data_parallel is not None:
            return self.data_parallel.batch_loss(batch, self.generator)
        return self.model.negative_elbo(batch, self.generator).mean()

    def _loss_value(self, loss):
        """The batch's mean negative ELBO, read after ``backward``.

        In a data-parallel fit it arrives with the averaged gradients.
        """
        if self.data_parallel is not None:
            return self.data_parallel.loss_value()
        return loss.item()

    def _game_step(self, batch):
        """One descent step of the model and one ascent step of the spread.

        The spread divergence KL(p~ || q~) = -H(p~) - E log q~ is bounded
        above by -H(k) - ELBO (convolution with k adds entropy, and the ELBO
        bounds log q~); the spread maximises this bound. Without the -H(k)
        term a learned covariance could raise the estimate merely by
        changing its own normalisation. The bound shares the negative ELBO
        with the model's loss, so one backward pass gives both players'
        gradients: the spread's with the sign flipped and -H(k)'s added.
        Returns the model's loss and the divergence estimate.
        """
        self.model_optimizer.zero_grad(set_to_none=True)
        self.spread_optimizer.zero_grad(set_to_none=True)
        loss = self._batch_loss(batch)
        loss.backward()
        loss_value = self._loss_value(loss)
        spread_parameters = self.model.spread_parameters()
        for parameter in spread_parameters:
            if parameter.grad is not None:
                parameter.grad.neg_()
        negative_entropy = self.model.spread.negative_entropy()
        if negative_entropy.requires_grad:
            # autograd.grad rather than a second backward pass, which would
            # set off the data-parallel gradient averaging again (-H(k) is
            # the same in every process).
            trained = [p for p in spread_parameters if p.requires_grad]
            gradients = torch.autograd.grad(-negative_entropy, trained, allow_unused=True)
            for parameter, gradient in zip(trained, gradients):
                if gradient is not None:
                    parameter.grad = (
                        gradient if parameter.grad is None else parameter.grad + gradient
                    )
        self.model_optimizer.step()
        self.spread_optimizer.step()
        return loss_value, loss_value + negative_entropy.item()

    def _model_step(self, batch):
        self.model_optimizer.zero_grad(set_to_none=True)
        loss = self._batch_loss(batch)
        loss.backward()
        self.model_optimizer.step()
        return self._loss_value(loss)

    def state_dict(self):
        """A copy of everything training changes: weights, optimisers, generator.

        :meth:`load_state_dict` returns the trainer (and its model) to it, so a
        failed epoch can be undone and the best epoch restored.
        """
        state = {
            "model": self.model.state_dict(),
            "model_optimizer": self.model_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "n_epochs_done": self.n_epochs_done,
        }
        if self.spread_optimizer is not None:
            state["spread_optimizer"] = self.spread_optimizer.state_dict()
        return copy.deepcopy(state)

    def load_state_dict(self, state):
        """Return to a state from :meth:`state_dict` (the state is not consumed)."""
        state = copy.deepcopy(state)
        self.model.load_state_dict(state["model"])
        self.model_optimizer.load_state_dict(state["model_optimizer"])
        if self.spread_optimizer is not None:
            self.spread_optimizer.load_state_dict(state["spread_optimizer"])
        self.generator.set_state(state["generator"])
        self.n_epochs_done = state["n_epochs_done"]

    def train_epoch(self, X, progress=None):
        """One pass over ``X``; returns its history entry.

        ``X`` is a tensor on the device, or any object with a ``shape`` that
        a tensor of row numbers indexes (out-of-core data,
        :class:`~skspread.deep._data.StandardisedRows`).

        Raises FloatingPointError as soon as a batch's loss is not finite.
        """
        self.model.train()
        start = time.perf_counter()
        n_samples = X.shape[0]
        # Row numbers in 32 bits where they fit: half the memory of the
        # order (on the CPU, the same permutation and generator state as
        # int64).
        index_dtype = torch.int32 if n_samples < 2**31 else torch.int64
        order = torch.randperm(
            n_samples, generator=self.generator, device=self.device, dtype=index_dtype
        )
        learn_spread = (
            self.spread_optimizer is not None
            and self.n_epochs_done >= self.spread_warmup_epochs
        )
        loss_sum, divergences = 0.0, []
        for index, begin in enumerate(range(0, n_samples, self.batch_size)):
            indices = order[begin : begin + self.batch_size]
            batch = self._rows(X, indices)
            if learn_spread and index % self.spread_step_interval == 0:
                loss, divergence = self._game_step(batch)
                divergences.append(divergence)
            else:
                loss = self._model_step(batch)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"The training loss became {loss} in epoch {self.n_epochs_done + 1} "
                    f"(batch {index + 1})."
                )
            loss_sum += loss * len(indices)
            # Free this batch before the next one is read: two never coexist.
            del batch
            if progress is not None:
                progress.update(len(indices))
                progress.set_postfix(loss=f"{loss:.4g}", refresh=False)
        self.model.eval()
        self._check_last_step(X, indices)
        self.n_epochs_done += 1
        entry = {
            "epoch": self.n_epochs_done,
            "loss": loss_sum / n_samples,
            "time": time.perf_counter() - start,
        }
        if divergences:
            entry["spread_divergence"] = sum(divergences) / len(divergences)
        return entry

    def _check_last_step(self, X, indices):
        """Raise FloatingPointError if the epoch's last step left a non-finite model.

        Each batch's loss is checked before its step, so a step that sends
        the model to inf or NaN would otherwise pass unseen at the end of
        training (with learning_rate=10 on digits, every score was NaN). The
        last batch's loss is evaluated again after the step, with a
        generator of its own so that training's random stream is unchanged.
        In a data-parallel fit each process evaluates its share of the
        batch, and all stop if any finds its loss non-finite.
        """
        with torch.no_grad():
            loss = self.model.negative_elbo(
                self._rows(X, indices), make_generator(self.device, 0)
            ).mean()
        finite = bool(torch.isfinite(loss))
        if self.data_parallel is not None:
            finite = self.data_parallel.everywhere(finite)
        if not finite:
            raise FloatingPointError(
                f"The model became non-finite at the last step of epoch "
                f"{self.n_epochs_done + 1}."
            )

    def fit(self, X, n_epochs, verbose=0, on_epoch=None):
        """Train for ``n_epochs`` passes; Ctrl-C stops after the current step.

        Parameters
        ----------
        X : tensor of shape (n_samples, n_features), on the device
        n_epochs : int
        verbose : int, default=0
        on_epoch : callable or None, default=None
            Called with each epoch's history entry; returning True stops.

        Returns
        -------
        entries : list of dict
            The history entries of the completed epochs.

        Raises
        ------
        FloatingPointError
            When a loss is not finite; the trainer and its model are first
            returned to their state at the start of that epoch, the end of
            the last finite one.
        """
        entries = []
        progress = None
        try:
            for _ in range(n_epochs):
                if verbose:
                    progress = tqdm(
                        total=X.shape[0],
                        desc=f"epoch {self.n_epochs_done + 1}",
                        leave=verbose > 1,
                        unit="sample",
                    )
                start_of_epoch = self.state_dict()
                try:
                    entry = self.train_epoch(X, progress)
                except FloatingPointError:
                    self.load_state_dict(start_of_epoch)
                    self.model.eval()
                    raise
                entries.append(entry)
                if progress is not None:
                    progress.set_postfix(loss=f"{entry['loss']:.4g}")
                    progress.close()
                    progress = None
                if on_epoch is not None and on_epoch(entry):
                    break
        except KeyboardInterrupt:
            self.model.eval()
            warnings.warn(
                f"Training interrupted after {len(entries)} complete epoch(s); the "
                "model keeps the parameters reached so far.",
                RuntimeWarning,
                stacklevel=3,
            )
        finally:
            if progress is not None:
                progress.close()
        return entries

    def __getstate__(self):
        # A torch.Generator does not pickle: keep its state, and rebuild the
        # generator on the device the model is loaded on (see ``to``).
        state = self.__dict__.copy()
        # A checkpoint taken during a data-parallel fit: its DDP wrapper
        # belongs to the process group, not to the model.
        state.pop("data_parallel", None)
        state["generator"] = None
        state["generator_state"] = self.generator.get_state()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def to(self, device):
        """Continue on ``device`` (after loading): the generator follows."""
        state = self.__dict__.pop("generator_state", None)
        if state is None:
            state = self.generator.get_state()
        self.device = device
        self.generator = restore_generator(state, device, self.seed + self.n_epochs_done)
        return self
