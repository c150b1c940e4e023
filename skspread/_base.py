"""Behaviour shared by the spread estimators."""

import numpy as np


class SpreadScoreMixin:
    """``score`` as the mean of ``score_samples``, so model selection can use it."""

    def score(self, X, y=None):
        """Mean spread log-likelihood (or its bound) of the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; higher is better, as
            :class:`~sklearn.model_selection.GridSearchCV` expects.
        """
        return float(np.mean(self.score_samples(X)))
