"""Callbacks of DeltaVAE's training loop: checkpoints that a killed run resumes from."""

import os
import pickle

__all__ = ["Checkpoint"]


class Checkpoint:
    """Save a DeltaVAE every few epochs during ``fit``, so a killed run can resume.

    Pass it in the estimator's ``callbacks``. The file holds the whole
    estimator (networks, optimisers, random generators, history and the
    early-stopping record) and the number of epochs the fit had still to
    run; it is replaced atomically, so a process killed while writing
    leaves the previous checkpoint whole. :meth:`resume` finishes the
    interrupted fit, with the same result as an uninterrupted one (bit for
    bit on the CPU with the same number of threads).

    Parameters
    ----------
    path : str or os.PathLike
        File to write.
    every : int, default=1
        Save after every this many epochs (counted as in ``history_``).

    See Also
    --------
    skspread.DeltaVAE : The estimator whose ``callbacks`` take it.

    Notes
    -----
    The estimator is pickled with its parameters, so its other callbacks
    must be picklable (functions and classes defined at the top level of a
    module are).

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skspread import DeltaVAE
    >>> from skspread.deep import Checkpoint
    >>> X = load_digits().data[:100]
    >>> path = os.path.join(tempfile.mkdtemp(), "vae.checkpoint")
    >>> vae = DeltaVAE(2, hidden_layer_sizes=(16,), n_epochs=4, device="cpu",
    ...                random_state=0, callbacks=[Checkpoint(path, every=2)])
    >>> vae = vae.fit(X)
    >>> Checkpoint.resume(path, X).n_iter_   # nothing left to run here
    4
    """

    def __init__(self, path, every=1):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}.")
        self.path = os.fspath(path)
        self.every = every

    def __repr__(self):
        return f"Checkpoint({self.path!r}, every={self.every})"

    def __call__(self, estimator, record):
        """Save ``estimator`` if ``record`` ends an epoch numbered a multiple of ``every``."""
        if record["epoch"] % self.every == 0:
            payload = {
                "estimator": estimator,
                "epochs_left": estimator._epochs_target - estimator.n_iter_,
            }
            temporary = f"{self.path}.{os.getpid()}.tmp"
            with open(temporary, "wb") as file:
                pickle.dump(payload, file)
            os.replace(temporary, self.path)
        return False

    @staticmethod
    def load(path):
        """The estimator saved in ``path``, as it was at the checkpoint.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by a Checkpoint.

        Returns
        -------
        estimator : DeltaVAE
        """
        with open(path, "rb") as file:
            return pickle.load(file)["estimator"]

    @staticmethod
    def resume(path, X):
        """Finish the fit that wrote ``path``: run the epochs it had left.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by a Checkpoint.
        X : array-like of shape (n_samples, n_features)
            The training data of the interrupted fit.

        Returns
        -------
        estimator : DeltaVAE
            The fitted estimator.
        """
        with open(path, "rb") as file:
            payload = pickle.load(file)
        estimator = payload["estimator"]
        return estimator._fit_and_report(X, payload["epochs_left"], partial=False, resume=True)
