"""DeltaVAE: a deterministic deep generator fitted with the spread divergence."""

# torch is an optional dependency: this module imports it only inside the
# methods that need it, so that the estimator can be imported, constructed
# and inspected (get_params, clone, repr) without torch.

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import BaseSpreadEstimator, check_n_samples
from ..spread import BaseSpread
from ._checks import ROUTED_PREFIXES, CallableList, PositiveIntegers
from ._data import by_blocks, is_dataset
from ._device import import_torch
from ._fitting import DeltaVAEFitting

# Spread copies of every row in score_samples.
_N_SCORE_SPREAD_COPIES = 4


class DeltaVAE(DeltaVAEFitting, BaseSpreadEstimator):
    """Delta-VAE: a deterministic deep generator fitted with the spread divergence.

    The model is implicit: x = g(z), z ~ N(0, I_K), with g a neural network and
    no observation noise, so its likelihood does not exist. Spread noise k is
    added to both data and model, y = f(x) + e, e ~ k, and the spread
    log-likelihood is maximised through an amortised variational bound (the
    ELBO) with a Gaussian encoder q(z|y) that sees a fresh spread sample y
    every step. The authors' lower-variance form of the decoder term (its
    closed-form expectation over the spread around f(x)) is offered as
    ``objective='low_variance'``; it is biased (see Notes).
    The spread may be learned (a low-rank covariance or an injective mean
    transformation f) to maximise the divergence, in a max-min game with the
    model.
    With ``spread=None`` this is the standard VAE with Gaussian observation
    noise on the model only, on the same networks and training loop.

    Needs torch (``pip install "skspread[deep]"``).

    Parameters
    ----------
    n_components : int, default=20
        Latent dimension K.
    architecture : {'mlp', 'conv', 'linear'}, default='mlp'
        'mlp': fully connected encoder and generator with ReLU hidden layers;
        'conv': a small convolutional encoder and generator (needs
        ``image_shape``, height and width divisible by 4); 'linear': no hidden
        layer, g(z) = W z + b (the same as 'mlp' with
        ``hidden_layer_sizes=()``).
    hidden_layer_sizes : tuple of positive int, default=(512, 512)
        Widths of the encoder's hidden layers ('mlp'; the generator uses them
        in reverse order). For 'conv', the first entry is the width of the
        dense layer between the convolutions and the latent code.
    image_shape : tuple of int or None, default=None
        (height, width) or (channels, height, width) of the images that the
        rows of ``X`` flatten, for ``architecture='conv'`` (and for a user
        ``generator`` that returns images).
    encoder : None, torch.nn.Module class or instance, default=None
        The amortised encoder q(z|y). None builds it from ``architecture``.
        A class is instantiated at fit with the ``encoder__*`` parameters of
        the estimator (``encoder__width=64`` gives ``width=64``), as skorch
        routes ``module__*``; an instance is copied at fit, so clones and
        refits never share weights. It must map a batch of shape
        (batch, n_features) to a tuple (mean, log_variance), each of shape
        (batch, n_components); ``fit`` checks this.
    generator : None, torch.nn.Module class or instance, default=None
        The generator g, given like ``encoder`` (``generator__*``
        parameters). It must map (batch, n_components) to (batch,
        n_features), or to images ``(batch, *image_shape)`` when ``image_shape``
        is set, which the estimator flattens.
    spread : {'gaussian', 'laplace'}, BaseSpread instance or None, default='gaussian'
        Spread kernel k; None gives the standard VAE baseline.
    spread_scale : float or 'auto', default='auto'
        Standard deviation (Gaussian) or scale b (Laplace) of the spread, in
        the data's units.
        'auto': half the root-mean-square standard deviation of the features
        for the Gaussian, the Laplace scale of the same variance otherwise.
    noise_variance : float or 'auto', default='auto'
        Observation noise variance of the model. With a spread the model is
        deterministic and this must be 0 or 'auto'. With ``spread=None`` it
        must be positive; 'auto' uses the variance of the Gaussian spread that
        ``spread_scale`` describes, so that the VAE and the delta-VAE have the
        same likelihood width.
    learn_spread : {'covariance', 'mean'} or None, default=None
        'covariance': Gaussian spread with covariance
        spread_scale^2 I + U U^T, U of shape (n_features, spread_rank) with
        ||U||_F^2 = spread_rank * spread_scale^2. 'mean': spread around
        f(x) = x + h(x) with a spectrally normalised residual network h,
        Lip(h) < 0.9. Either is trained to maximise the divergence,
        against the model (a max-min game).
    spread_rank : int, default=20
        Rank R of the learned covariance.
    objective : {'exact', 'low_variance'}, default='exact'
        Decoder term of the delta-VAE's loss. 'exact': log k(y - f(g(z))) at
        the spread sample y that the encoder saw, the spread ELBO itself,
        whose optimum is the spread maximum-likelihood fit. 'low_variance'
        (the authors' code): the closed-form expectation of
        log k(y - f(g(z))) over spread samples y around f(x); less noisy
        gradients, but its optimum is the noise-only fit (see Notes).
    n_epochs : int, default=10
        Passes over the data in ``fit``.
    batch_size : int, default=128
        Rows per optimisation step.
    learning_rate : float, default=1e-3
        Adam step size of the encoder and generator.
    spread_learning_rate : float or None, default=None
        Adam step size of the learned spread; None uses
        ``learning_rate / 10`` (the authors' ratio).
    n_importance_samples : int, default=1
        Importance samples of the bound in :meth:`score_samples`
        (1: the ELBO).
    device : str, default='auto'
        'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batches, spread noise and the common random
        numbers of :meth:`score_samples`. Results are reproducible bit for bit
        on the CPU with the same number of threads.
    verbose : int, default=0
        1: a progress bar per epoch with the loss; 2: bars are kept.
    warm_start : bool, default=False
        Whether ``fit`` continues from the previous fit instead of starting
        anew. If a parameter that shapes the model (``n_components``,
        ``architecture``, ``hidden_layer_sizes``, ``image_shape``, the
        networks and their ``encoder__*``/``generator__*`` parameters, the
        spread and its scale, ``noise_variance``, ``learn_spread``,
        ``spread_rank``, ``objective``) changed since the model was built,
        ``fit`` (and ``partial_fit``) fits anew, with a warning.
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the rows (the same
        rows at every fit of a model), record their negative spread ELBO
        after every epoch (``'validation_loss'`` in ``history_``), stop when
        it has not improved by ``tol`` for ``n_iter_no_change`` epochs, and
        end with the weights of the best epoch (``best_epoch_``). Not used
        by ``partial_fit``.
    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before early
        stopping ends training.
    tol : float, default=1e-4
        Improvement of the validation loss (per row, in nats) that resets
        the count of ``n_iter_no_change``.
    callbacks : list of callable or None, default=None
        Called in order after every epoch as ``callback(estimator,
        record)``, with the epoch's ``history_`` entry; training stops after
        the epoch if any returns True. :class:`~skspread.deep.Checkpoint`
        saves the model every few epochs so that a killed run can resume.
    **routed : dict
        ``encoder__*`` and ``generator__*`` parameters of the user's network
        classes (see ``encoder``); any other keyword is refused at fit.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted networks and spread (a ``DeltaVAEModule``): ``encoder``,
        ``decoder`` (the generator g) and ``spread``.
    spread_ : BaseSpread or None
        The resolved fixed part of the spread kernel, in the data's units
        (None for the VAE baseline, ``spread=None``).
    spread_scale_ : float or None
        Its scale (None for the VAE baseline).
    noise_variance_ : float
        Observation noise variance of the model (0 with a spread).
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data, removed before the networks.
    data_scale_ : float
        Root-mean-square standard deviation of the training features; the
        networks see ``(X - mean_) / data_scale_`` (see Notes).
    device_ : str
        Device the model lives on.
    history_ : list of dict
        One entry per epoch: 'epoch', 'loss' (mean negative ELBO, in the
        data's units), 'time' (seconds), with early stopping
        'validation_loss' (the held-out rows' mean negative ELBO) and,
        while a learned spread trains, 'spread_divergence' (mean divergence
        bound at the spread's steps).
    n_iter_ : int
        Number of completed epochs.
    best_epoch_ : int or None
        With early stopping, the epoch (as numbered in ``history_``) whose
        weights the model ends with; None without.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    skspread.spread.GaussianSpread : Gaussian spread kernel.
    skspread.spread.LaplaceSpread : Laplace spread kernel.
    skspread.deep.Checkpoint : Callback that saves a run so it can resume.
    sklearn.decomposition.FactorAnalysis : Linear Gaussian latent model.

    Notes
    -----
    Per row x, with y_bar = f(x) and a fresh y = y_bar + e, the model
    minimises the negative spread ELBO KL(q(z|y) || N(0, I))
    - E_q log k(y - f(g(z))), an unbiased estimate of minus a lower bound of
    the spread log-likelihood E_y log q~(y) (``objective='exact'``).

    The lower-variance form of the authors' code replaces log k(y - f(g(z)))
    by its expectation over an independent spread sample around y_bar: for
    the Gaussian log k(y_bar - f(g(z))) - D/2, for the Laplace per
    coordinate, with d = y_bar - f(g(z)), ``-log(2 b) - (|d| + b exp(-|d| / b)) / b``.
    That equals the spread ELBO only if the encoder's input did not depend
    on e. It does, and for the Gaussian the two differ by
    E[e . f(g(z))] / sigma^2. With the best encoder, the lower-variance
    objective is log q~(y_bar) - D/2: the likelihood of the unspread data
    under the spread model, which is the inconsistent noise-only objective
    of the paper's section 1.1.1. On a linear implicit model it finds the
    right subspace but shrinks the generator's singular values like the
    noise-only MLE, while ``objective='exact'`` recovers them (tested).

    A learned spread maximises the upper bound -H(k) - ELBO of the spread
    divergence KL(p~ || q~) = -H(p~) - E log q~, one Adam step on every
    fourth batch after one epoch of warm-up, while the model minimises the
    negative ELBO on every batch. Both players' gradients come from the same
    evaluation of the loss (simultaneous gradient descent-ascent), so the
    spread's steps cost no extra pass through the networks. The divergence
    is kept bounded by the fixed isotropic part and norm of the covariance
    and by Lip(h) < 1 for the mean map. With the isotropic part fixed, the
    learned covariance cannot discriminate more than the fixed spread
    sigma^2 I: its noise is that spread's plus independent noise U u, so by
    the data processing inequality its divergence is at most the fixed
    spread's; the spread only chooses where the extra noise costs the least.
    The mean transformation can stretch the space (Lip(f) < 1.9) and so
    raise the divergence above the fixed spread's; maximising the divergence
    drives it to stretch as far as that bound allows, which is much like a
    fixed spread narrower by up to that factor. On MNIST that lowered the
    samples' Frechet distance where the fixed spread was too wide and raised
    it where it was not (the user guide has the figures). At the default
    ``spread_learning_rate`` the learned spread moves slowly: tens of epochs
    are a short budget for it.

    The networks see standardised data, ``(x - mean_) / data_scale_``, and the
    spread kernel's scale is divided by ``data_scale_`` to match; outputs go
    back to the data's units (samples times ``data_scale_`` plus ``mean_``,
    log-densities minus D log ``data_scale_``). So a fit on c X is the fit on
    X scaled: one learning rate and one architecture serve data in any units.

    A loss that becomes non-finite stops training with a
    ``FloatingPointError``; the estimator keeps the state of the last finite
    epoch. Any other error raised by ``fit`` leaves the estimator as it was
    before the call. Ctrl-C (KeyboardInterrupt) during training is not an
    error: training ends after the current step with a warning, keeping the
    parameters reached (``n_iter_`` counts the complete epochs).

    ``score_samples`` averages the bound over a few spread copies of each row,
    drawn (with its importance draws) from a seed that is a hash of the row's
    values and a seed fixed at fit: it is deterministic, a row's score does
    not depend on the other rows, and the draws' error averages out over
    rows in ``score``.

    Pickling moves the tensors through the CPU; a model trained on a GPU
    loads on a machine without one (on the CPU, with a warning).

    References
    ----------
    M. Zhang, P. Hayes, T. Bird, R. Habib, D. Barber. "Spread Divergence".
    Proceedings of the 37th International Conference on Machine Learning
    (ICML), 2020. Section 4.2.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skspread import DeltaVAE
    >>> X = load_digits().data[:200] / 16
    >>> vae = DeltaVAE(n_components=2, hidden_layer_sizes=(32,), n_epochs=2,
    ...                device="cpu", random_state=0).fit(X)
    >>> vae.transform(X).shape
    (200, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    >>> len(vae.history_)
    2
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"mlp", "conv", "linear"})],
        "hidden_layer_sizes": [PositiveIntegers()],
        "image_shape": [tuple, None],
        "encoder": [HasMethods(["forward"]), None],
        "generator": [HasMethods(["forward"]), None],
        "spread": [StrOptions({"gaussian", "laplace"}), BaseSpread, None],
        "spread_scale": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "noise_variance": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "learn_spread": [StrOptions({"covariance", "mean"}), None],
        "spread_rank": [Interval(Integral, 1, None, closed="left")],
        "objective": [StrOptions({"low_variance", "exact"})],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "spread_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "callbacks": [CallableList(), None],
    }

    def __init__(
        self,
        n_components=20,
        *,
        architecture="mlp",
        hidden_layer_sizes=(512, 512),
        image_shape=None,
        encoder=None,
        generator=None,
        spread="gaussian",
        spread_scale="auto",
        noise_variance="auto",
        learn_spread=None,
        spread_rank=20,
        objective="exact",
        n_epochs=10,
        batch_size=128,
        learning_rate=1e-3,
        spread_learning_rate=None,
        n_importance_samples=1,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        callbacks=None,
        **routed,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.encoder = encoder
        self.generator = generator
        self.spread = spread
        self.spread_scale = spread_scale
        self.noise_variance = noise_variance
        self.learn_spread = learn_spread
        self.spread_rank = spread_rank
        self.objective = objective
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.spread_learning_rate = spread_learning_rate
        self.n_importance_samples = n_importance_samples
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.callbacks = callbacks
        # Keyword arguments routed to the user's network classes; checked at
        # fit (scikit-learn estimators do not raise in __init__).
        self._routed = dict(routed)

    def get_params(self, deep=True):
        """Get parameters for this estimator, the routed ``encoder__*``/``generator__*`` too.

        Parameters
        ----------
        deep : bool, default=True
            If True, will return the parameters for this estimator and
            contained subobjects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._routed)
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator, the routed ones too.

        Parameters
        ----------
        **params : dict
            Estimator parameters; ``encoder__*`` and ``generator__*`` go to
            the encoder and generator classes at the next fit.

        Returns
        -------
        self : DeltaVAE
            Estimator instance.
        """
        routed = {
            name: params.pop(name)
            for name in list(params)
            if name.startswith(ROUTED_PREFIXES) or name in self._routed
        }
        self._routed = {**self._routed, **routed}
        return super().set_params(**params)

    def fit(self, X, y=None):
        """Fit the model to ``X`` for ``n_epochs`` passes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap or torch Dataset
            Training data. A ``numpy.memmap`` or a torch ``Dataset`` of rows
            is read batch by batch, never copied whole (see the user
            guide's page "Scaling out").
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : DeltaVAE
            The fitted estimator.

        Raises
        ------
        FloatingPointError
            If the loss becomes non-finite; the estimator keeps the state of
            the last finite epoch.
        """
        return self._fit_and_report(X, self.n_epochs, partial=False)

    def partial_fit(self, X, y=None):
        """One pass over ``X``, continuing from the current state.

        The first call (or ``fit``) sets the standardisation, ``mean_`` and
        ``data_scale_``, and the 'auto' spread; later calls keep them, as
        the networks were trained on inputs in those units, and warn when a
        block's deviation from ``mean_`` is over ten times ``data_scale_``
        or under a tenth of it. A first block should be like the rest.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap or torch Dataset
            Training data, read batch by batch when out of core (as in
            :meth:`fit`).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : DeltaVAE
            The updated estimator.
        """
        return self._fit_and_report(X, 1, partial=True)

    def _evaluation_module(self):
        """A float64 copy of the model for transform, score and generation.

        In float32 the rounding of a row's result depends on the other rows
        of the batch (blocked matrix products); in float64 that is far below
        any tolerance, so a row's output does not depend on its batch.
        """
        return copy.deepcopy(self.module_).double()

    def _batched(self, X, function):
        """Apply ``function`` to float64 row batches of ``X`` without gradients."""
        torch = import_torch()
        outputs = []
        with torch.no_grad():
            for begin in range(0, max(len(X), 1), 4096):
                batch = torch.tensor(
                    X[begin : begin + 4096], dtype=torch.float64, device=self.device_
                )
                outputs.append(function(batch).cpu().numpy())
        return np.concatenate(outputs)

    def transform(self, X):
        """Encode ``X``: the mean of q(z|f(x)).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or torch Dataset
            Data; a Dataset's rows are read block by block.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means.
        """
        check_is_fitted(self)
        if is_dataset(X):
            return by_blocks(self.transform, X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        module = self._evaluation_module()

        def encode(batch):
            Y = batch if module.spread is None else module.spread.centre(batch)
            return module.encoder(Y)[0]

        return self._batched(self._standardise(X), encode)

    def inverse_transform(self, X):
        """Generate from latent codes: the deterministic generator g(z).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Generator outputs.
        """
        check_is_fitted(self)
        Z = self._validate_latent(X)
        generated = self._batched(Z, self._evaluation_module().generate)
        return generated * self.data_scale_ + self.mean_

    def sample(self, n_samples=1, random_state=None):
        """Draw samples g(z), z ~ N(0, I), from the deterministic generator.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples, a positive int.
        random_state : int, RandomState instance or None, default=None
            Seed or generator of the latent draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples (without spread noise).
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        rng = check_random_state(random_state)
        return self.inverse_transform(rng.standard_normal((n_samples, self._n_features_out)))

    def score_samples(self, X):
        """Spread log-likelihood bound of each sample.

        An importance-weighted bound (the ELBO for ``n_importance_samples=1``)
        on log q~(y), averaged over spread copies y of each row, drawn from
        the row's values and a seed fixed at fit (see Notes of the class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or torch Dataset
            Data; a Dataset's rows are read block by block.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Lower bound on the spread log-likelihood of each row.
        """
        check_is_fitted(self)
        if is_dataset(X):
            return by_blocks(self.score_samples, X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        module = self._evaluation_module()
        n_copies = 0 if module.spread is None else _N_SCORE_SPREAD_COPIES

        def row_bound(batch):
            spread_noise, latent_noise = self._evaluation_noise(batch, module, n_copies)
            return module.log_likelihood_bound(batch, spread_noise, latent_noise)

        bound = self._batched(self._standardise(X), row_bound)
        return bound - self._log_scale_offset()

    @property
    def _n_features_out(self):
        # Raises NotFittedError (an AttributeError) before fit, so that
        # get_feature_names_out does too.
        check_is_fitted(self)
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
