"""An AttributeError that names bigem's word for what a pomegranate user reaches for.

pomegranate's models answer ``log_probability``, ``priors``, ``edges``, ...; bigem's
estimators have scikit-learn's and hmmlearn's names. A missing attribute that is one of
pomegranate's says which call or attribute does its work here.
"""

from __future__ import annotations

# pomegranate's names for what every bigem estimator calls otherwise
COMMON = {
    "cuda": "pass device='cuda' (set_params(device='cuda') on a fitted model)",
    "summarize": "fit(X) reads and sums the batches of files or a folder for you; partial_fit(batch) is online EM",
    "from_summaries": "fit(X) makes the M-steps itself; partial_fit(batch) takes one per mini-batch",
}
MIXTURE = {
    **COMMON,
    "distributions": "the components' parameters are attributes: means_, covariances_, probabilities_, lambdas_, ...",
    "log_probability": "use score_samples(X), the log-density of each row",
    "probability": "use np.exp(score_samples(X))",
    "priors": "the mixture weights are weights_",
}
HMM = {
    **COMMON,
    "distributions": "the states' emission parameters are attributes, hmmlearn's: means_ and covars_ (Gaussian), "
                     "weights_ too (GMMHMM), emissionprob_ (categorical, multinomial), lambdas_ (Poisson)",
    "log_probability": "use score(seq) for each sequence's log-likelihood (score(X, lengths) sums them, as "
                       "hmmlearn's)",
    "probability": "use np.exp(score(seq)) for each sequence",
    "edges": "the transition probabilities are transmat_ (np.log(transmat_) is pomegranate's edges)",
    "starts": "the start probabilities are startprob_ (np.log(startprob_) is pomegranate's starts)",
    "ends": "bigem's HMMs are hmmlearn's, without end probabilities (every state may end a sequence)",
    "forward_backward": "use score_samples(X, lengths): the log-likelihood and each step's state posteriors",
}


class PomegranateHints:
    """``__getattr__``: Python's AttributeError, with the hint of ``_pomegranate`` for a
    pomegranate name. Only missing attributes get here, so ``hasattr`` checks of fitted
    attributes are unchanged. A property that raised AttributeError (its own message:
    BayesianGaussianMixture's ``bic``) raises it again."""

    _pomegranate: dict[str, str] = COMMON

    def __getattr__(self, name: str):
        attr = getattr(type(self), name, None)
        if isinstance(attr, property) and attr.fget is not None:
            return attr.fget(self)
        hint = self._pomegranate.get(name)
        message = f"{type(self).__name__!r} object has no attribute {name!r}"
        if hint is not None:
            message += f"; {hint} (docs/coming-from/pomegranate.md maps pomegranate's calls)"
        raise AttributeError(message, name=name, obj=self)  # keeps Python's "Did you mean" suggestions
