"""How DeltaVAE fits: set-up, warm starts, validation, early stopping, callbacks,
and how its torch state is pickled.

A mixin of :class:`~skspread.DeltaVAE`, kept apart from its public methods.
torch is imported only inside the methods, as in the estimator.
"""

import copy
import math
import warnings

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_feature_names, _check_n_features, validate_data

from .._base import _is_zero_scalar, atomic_fit
from .._row_noise import row_keys
from ..spread import GaussianSpread
from ._checks import ROUTED_PREFIXES, routed_params
from ._data import RowSource, StandardisedRows, feature_statistics, is_out_of_core
from ._device import dumps, import_torch, loads, resolve_device
from ._distributed import data_parallel

# Parameters that fix the networks' and the spread's shapes and meaning: a
# warm start cannot continue a model built with other values.
# Rows read to compare data that continue a fit with its standardisation.
_N_UNITS_ROWS = 4096

_STRUCTURAL_PARAMS = (
    "n_components",
    "architecture",
    "hidden_layer_sizes",
    "image_shape",
    "encoder",
    "generator",
    "spread",
    "spread_scale",
    "noise_variance",
    "learn_spread",
    "spread_rank",
    "objective",
)


def _same(first, second):
    """Whether two parameter values are the same (objects by identity)."""
    if first is second:
        return True
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(map(_same, first, second))
    if type(first) is not type(second) or isinstance(first, type):
        return False
    try:
        return bool(first == second)
    except (TypeError, ValueError):
        return False


class DeltaVAEFitting:
    """The fitting machinery of DeltaVAE (a mixin)."""

    def _structure(self):
        params = {name: getattr(self, name) for name in _STRUCTURAL_PARAMS}
        params.update(self._routed)
        return params

    def _changed_structure(self):
        """Names of the structural parameters changed since the model was built."""
        current, built = self._structure(), self._built_structure
        return sorted(
            name
            for name in set(current) | set(built)
            if not _same(current.get(name), built.get(name))
        )

    def _fit_and_report(self, X, n_epochs, partial, resume=False):
        # A non-finite loss ends the fit with the last finite epoch's state;
        # the error is raised outside the atomic section, which would
        # otherwise return the estimator to its state before the fit.
        diverged = self._fit_atomically(X, n_epochs, partial, resume)
        if diverged is not None:
            raise FloatingPointError(
                f"{diverged} Training stopped; the model keeps the state of the last "
                f"finite epoch ({self.n_iter_} epoch(s) in history_). Lower "
                f"learning_rate (now {self.learning_rate!r}) or batch the data "
                "differently. Inputs are standardised inside the estimator, with the "
                "mean_ and data_scale_ of the data the model was first fitted on: "
                "their units are not the cause, unless data passed to partial_fit or "
                "a warm start are in other units than those."
            ) from diverged
        return self

    @atomic_fit
    @_fit_context(prefer_skip_nested_validation=True)
    def _fit_atomically(self, X, n_epochs, partial, resume):
        keep = hasattr(self, "module_") and (partial or resume or self.warm_start)
        if keep and not resume:
            changed = self._changed_structure()
            if changed:
                warnings.warn(
                    f"{'partial_fit' if partial else 'warm_start=True'} cannot continue "
                    f"the previous fit: {', '.join(changed)} changed since the model was "
                    "built. The model is fitted anew.",
                    UserWarning,
                    # Past the decorators and _fit_and_report, at the caller's line.
                    stacklevel=6,
                )
                keep = False
        X = self._validate_training_data(X, reset=not keep)
        if keep:
            self._warn_if_other_units(X)
            self._trainer.set_learning_rates(self.learning_rate, self._spread_learning_rate())
            self._trainer.batch_size = self.batch_size
            # Training changes the networks in place: keep their state to
            # put back if the fit raises (the rest of the estimator is
            # restored by atomic_fit).
            saved = self._trainer.state_dict()
        else:
            self._initialise(X)
        early_stopping = self.early_stopping and not partial
        data, validation = self._training_data(X, early_stopping)
        if not resume:
            self._epochs_target = self.n_iter_ + n_epochs
            self._stopping = {"best_loss": math.inf, "best_epoch": None, "stale": 0, "best": None}
        try:
            # Data-parallel inside a torch.distributed process group; the
            # progress bar only in the first process.
            with data_parallel(self, data.shape[0], n_epochs) as rank:
                self._trainer.fit(
                    data,
                    n_epochs,
                    self.verbose if rank == 0 else 0,
                    on_epoch=lambda entry: self._end_epoch(entry, validation, early_stopping),
                )
        except FloatingPointError as error:
            # The last finite epoch stays (not the best one): said by the error.
            return error
        except BaseException:
            if keep:
                self._trainer.load_state_dict(saved)
            raise
        finally:
            self.best_epoch_ = self._stopping["best_epoch"]
            best, self._stopping = self._stopping["best"], {**self._stopping, "best": None}
        if early_stopping and best is not None:
            self.module_.load_state_dict(best)
        return None

    def _warn_if_other_units(self, X):
        """Warn when data that continue a fit are far from its standardisation.

        ``mean_`` and ``data_scale_`` are set by the first fit and kept (the
        networks were trained on inputs in those units): a later block whose
        root-mean-square deviation from ``mean_`` is over ten times
        ``data_scale_`` or under a tenth of it is in other units, or unlike
        the first block (a first block of zeros gives ``data_scale_`` 1).
        """
        n_samples = X.n_samples if isinstance(X, RowSource) else len(X)
        # Evenly spaced rows, at most _N_UNITS_ROWS of them: large or
        # out-of-core data are not copied or read whole for this.
        sample = np.unique(np.linspace(0, n_samples - 1, min(n_samples, _N_UNITS_ROWS)).astype(int))
        rows = X.rows(sample) if isinstance(X, RowSource) else X[sample]
        ratio = math.sqrt(float(np.mean(self._standardise(rows) ** 2)))
        if not 0.1 <= ratio <= 10.0:
            warnings.warn(
                f"The rows passed to continue the fit deviate from mean_ by {ratio:.3g} "
                f"times data_scale_={self.data_scale_:.4g}, which the first fit set and "
                "the networks were trained on. Pass data in the units of the first fit, "
                "or fit anew (fit, or a first partial_fit on rows like the rest).",
                UserWarning,
                stacklevel=7,
            )

    def _validate_training_data(self, X, reset):
        """Validated training data: an array, or a RowSource for out-of-core data.

        A ``numpy.memmap`` or a torch ``Dataset`` is not copied: its shape and
        dtype are checked here, its values block by block in the statistics
        pass of a new fit (or, when a fit continues, in a sample of rows
        here), and every batch as the trainer reads it.
        """
        if not is_out_of_core(X):
            return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        source = RowSource(X)
        _check_feature_names(self, source, reset=reset)
        _check_n_features(self, source, reset=reset)
        if not reset:
            source.check_sample(check_random_state(self.random_state))
        return source

    def _training_data(self, X, early_stopping):
        """Standardised training rows for the trainer, and the validation rows or None.

        Out-of-core training rows stay lazy (:class:`StandardisedRows`); the
        validation rows are read into a tensor.
        """
        torch = import_torch()
        device = self._trainer.device
        if isinstance(X, RowSource):
            train, validation = self._split_validation(X) if early_stopping else (X, None)
            if validation is not None:
                validation = StandardisedRows(validation, self.mean_, self.data_scale_, device)[
                    np.arange(validation.n_samples)
                ]
            return StandardisedRows(train, self.mean_, self.data_scale_, device), validation
        X = self._standardise(X)
        validation = None
        if early_stopping:
            X, validation = self._split_validation(X)
            validation = torch.tensor(validation, dtype=torch.float32, device=device)
        return torch.tensor(X, dtype=torch.float32, device=device), validation

    def _split_validation(self, X):
        """Training and validation rows: the same split for every fit of a model.

        ``X`` is an array or a RowSource (whose rows are then not read).
        """
        n_samples = X.shape[0]
        n_validation = math.ceil(self.validation_fraction * n_samples)
        if n_validation < 1 or n_samples - n_validation < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no training "
                f"or no validation row out of {n_samples}; give more rows or change "
                "validation_fraction."
            )
        order = np.random.RandomState(self._split_seed).permutation(n_samples)
        return X[np.sort(order[n_validation:])], X[np.sort(order[:n_validation])]

    def _validation_loss(self, validation):
        """Mean negative spread ELBO of the validation rows (common random numbers)."""
        torch = import_torch()
        module = self.module_
        generator = torch.Generator(device=self.device_).manual_seed(self._evaluation_seed)
        dtype = validation.dtype
        with torch.no_grad():
            spread_noise = None
            if module.spread is not None:
                spread_noise = module.spread.noise((4, self.n_features_in_), generator)
            latent_noise = torch.randn(
                (1, self.n_components), generator=generator, device=self.device_, dtype=dtype
            )
            bound = torch.cat(
                [
                    module.log_likelihood_bound(batch, spread_noise, latent_noise)
                    for batch in torch.split(validation, 4096)
                ]
            )
        return -float(bound.mean()) + self._log_scale_offset()

    def _end_epoch(self, entry, validation, early_stopping):
        """Record an epoch, stop early, call the callbacks; True stops training."""
        entry = dict(entry, loss=entry["loss"] + self._log_scale_offset())
        stop = False
        if validation is not None:
            loss = self._validation_loss(validation)
            entry["validation_loss"] = loss
            stopping = dict(self._stopping)
            if loss < stopping["best_loss"] - self.tol:
                stopping["stale"] = 0
            else:
                stopping["stale"] += 1
            if loss < stopping["best_loss"]:
                stopping.update(
                    best_loss=loss,
                    best_epoch=entry["epoch"],
                    best=copy.deepcopy(self.module_.state_dict()),
                )
            self._stopping = stopping
            stop = early_stopping and stopping["stale"] >= self.n_iter_no_change
            if stop:
                # Nothing left to run: a checkpoint taken now resumes to the end.
                self._epochs_target = self.n_iter_ + 1
        self.history_ = [*self.history_, entry]
        self.n_iter_ = len(self.history_)
        for callback in self.callbacks or ():
            # Every callback sees every epoch, even after one asked to stop.
            stop = bool(callback(self, entry)) or stop
        return stop

    def _evaluation_noise(self, batch, module, n_copies):
        """Spread (n, S, D) (None without spread) and latent (n, T, K) draws of each row.

        Each row's draws come from a generator seeded with a hash of the row
        (standardised, so in the data's units) and the evaluation seed: a
        row's score depends on that row alone, and rows get independent
        draws, whose error averages out over rows. The kernel (or the learned
        spread) draws its own noise, so any kernel serves.
        """
        torch = import_torch()
        keys = row_keys(batch.cpu().numpy(), 1.0, self._evaluation_seed)
        generator = torch.Generator(device=self.device_)
        n_draws, n_components = self.n_importance_samples, self.n_components
        spread_noise, latent_noise = [], []
        for key in keys.tolist():
            generator.manual_seed(key)
            if n_copies:
                spread_noise.append(module.spread.noise((n_copies, batch.shape[1]), generator))
            latent_noise.append(
                torch.randn(
                    (n_draws, n_components),
                    generator=generator,
                    device=batch.device,
                    dtype=batch.dtype,
                )
            )
        spread_noise = torch.stack(spread_noise) if n_copies else None
        return spread_noise, torch.stack(latent_noise)

    def _log_scale_offset(self):
        """D log(data_scale_): log-densities in the data's units minus standardised ones."""
        return self.n_features_in_ * math.log(self.data_scale_)

    def _standardise(self, X):
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.data_scale_

    def _auto_spread_std(self, X):
        """Half the root-mean-square standard deviation of the features (``data_scale_``)."""
        return 0.5 * self.data_scale_

    def _spread_learning_rate(self):
        if self.spread_learning_rate is None:
            return self.learning_rate / 10
        return self.spread_learning_rate

    def _resolve_model_noise(self, X):
        """The spread kernel (or None) and the model noise variance, in data units."""
        kernel = self._resolve_spread(X, self.noise_variance)
        if kernel is None:
            if self.learn_spread is not None:
                raise ValueError(
                    f"learn_spread={self.learn_spread!r} needs a spread; got spread=None."
                )
            if self.noise_variance != "auto":
                return None, float(self.noise_variance)
            if self.spread_scale == "auto":
                return None, self._auto_spread_std(X) ** 2
            return None, float(self.spread_scale) ** 2
        if self.noise_variance != "auto" and not _is_zero_scalar(self.noise_variance):
            raise ValueError(
                "With a spread the delta-VAE's generator is deterministic: "
                f"noise_variance must be 0 or 'auto', got {self.noise_variance!r}. "
                "Use spread=None for a VAE with observation noise."
            )
        if self.learn_spread == "covariance":
            if not isinstance(kernel, GaussianSpread):
                raise ValueError(
                    "learn_spread='covariance' learns a Gaussian covariance; "
                    f"got spread={self.spread!r}. Use spread='gaussian'."
                )
            if self.spread_rank > X.shape[1]:
                raise ValueError(
                    f"spread_rank={self.spread_rank} exceeds n_features={X.shape[1]}."
                )
        return kernel, 0.0

    def _standardised_kernel(self, kernel):
        """The kernel in the units of the standardised data (scale / data_scale_)."""
        standardised = copy.copy(kernel)
        standardised.scale = kernel.scale / self.data_scale_
        return standardised

    def _initialise(self, X):
        torch = import_torch()
        from ._model import DeltaVAEModule
        from ._networks import ResidualMap, make_networks
        from ._spread import SpreadModule, check_torch_kernel
        from ._trainer import Trainer

        unknown = sorted(name for name in self._routed if not name.startswith(ROUTED_PREFIXES))
        if unknown:
            raise TypeError(
                f"DeltaVAE got unexpected keyword argument(s) {unknown}; only "
                "encoder__* and generator__* parameters are routed (to the "
                "encoder and generator classes)."
            )
        device = resolve_device(self.device)
        self.mean_, self.data_scale_ = feature_statistics(X)
        kernel, self.noise_variance_ = self._resolve_model_noise(X)
        self._store_spread(kernel)
        n_features = X.shape[1]
        if kernel is not None:
            kernel = self._standardised_kernel(kernel)
            check_torch_kernel(kernel, n_features, self.objective)
        rng = check_random_state(self.random_state)
        init_seed, train_seed, self._split_seed = rng.randint(np.iinfo(np.int32).max, size=3)
        self._set_evaluation_seed(rng)
        self._built_structure = self._structure()
        # Initialise on the CPU from a private seed: the same weights on every
        # device, and the caller's global torch random state is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            encoder, decoder = make_networks(
                self.architecture,
                self.hidden_layer_sizes,
                self.image_shape,
                n_features,
                self.n_components,
                encoder=self.encoder,
                generator=self.generator,
                encoder_params=routed_params(self._routed, "encoder__"),
                generator_params=routed_params(self._routed, "generator__"),
            )
            if kernel is None:
                spread_module = None
                observation = GaussianSpread(
                    math.sqrt(self.noise_variance_) / self.data_scale_
                )
            else:
                observation = None
                mean_map = (
                    ResidualMap(n_features, hidden_size=min(n_features, 256))
                    if self.learn_spread == "mean"
                    else None
                )
                rank = self.spread_rank if self.learn_spread == "covariance" else None
                spread_module = SpreadModule(kernel, n_features, rank, mean_map)
            module = DeltaVAEModule(
                encoder, decoder, spread_module, observation, self.objective
            )
        self.module_ = module.to(device).eval()
        self.device_ = str(device)
        self._trainer = Trainer(
            self.module_,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            spread_learning_rate=self._spread_learning_rate(),
            device=device,
            seed=int(train_seed),
        )
        self.history_ = []
        self.best_epoch_ = None
        self.n_iter_ = 0

    def __getstate__(self):
        # A copy: object.__getstate__ returns the instance's own __dict__.
        state = dict(super().__getstate__())
        if "module_" in state:
            # One payload, so the trainer's optimisers keep pointing at the
            # module's parameters after loading.
            state["_torch_payload"] = dumps(
                {"module": state.pop("module_"), "trainer": state.pop("_trainer")}
            )
        return state

    def __setstate__(self, state):
        payload = state.pop("_torch_payload", None)
        if payload is not None:
            loaded, device = loads(payload, state["device_"], owner="This DeltaVAE")
            state["module_"] = loaded["module"]
            state["_trainer"] = loaded["trainer"].to(device)
            state["device_"] = str(device)
        super().__setstate__(state)
