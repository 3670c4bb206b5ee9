"""MultinomialHMM: hmmlearn's HMM whose states emit counts of D categories in n trials."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .._core.errors import DataError, ParameterError
from .._core.types import Chunk
from ..models.hmm_multinomial import MultinomialEmission, MultinomialEmissionParams
from ..sources.validate import RowRule
from . import _params
from .hmm import COMMON_DOC, _BaseHMM, _common, _non_negative_integers, _random_rows

__all__ = ["MultinomialHMM"]


class _Trials(_params.Constraint):
    """None, a positive int, or one positive int per row (hmmlearn's ``n_trials``)."""

    def check(self, value, name, owner):
        if value is None:
            return None
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0:
            raise ParameterError(f"The {name!r} parameter of {owner} must be a positive int or a 1-D array of them "
                                 f"(the trials of each row). Got {value!r}.")
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all() and (arr >= 1).all()):
            raise ParameterError(f"The {name!r} parameter of {owner} must hold positive integers. Got {value!r}.")
        return int(arr) if arr.ndim == 0 else arr.astype(np.int64)


class MultinomialHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with multinomial emissions, a drop-in for ``hmmlearn.hmm.MultinomialHMM``.

    Each row of X holds the counts of ``n_features`` categories in ``n_trials`` draws
    from its state's distribution ``emissionprob_``.

    Parameters
    ----------
    n_trials : int or array of int (n_samples,), default=None
        The trials of every row, or of each row; each row's counts must sum to it in
        ``fit`` (as in hmmlearn, ``score``, ``predict`` and the others take each row's own
        total). None: each row's own sum; ``sample`` then draws the trials every row of the
        fit held (``n_trials_``), and needs n_trials set where the rows differed.
"""
        + COMMON_DOC
        + """
    Attributes
    ----------
    startprob_, transmat_ : ndarray
    emissionprob_ : ndarray (n_components, n_features)
    n_trials_ : int or None
        The trials every row of the fit held (None where rows held different totals):
        what ``sample`` draws when ``n_trials`` is None.
    monitor_ : ConvergenceMonitor
    n_passes_ : int
        Passes over the data the fit took (with ``accelerate``, rejected extrapolations too).

    Notes
    -----
    ``missing_values`` takes only 'error' here (rows of counts with gaps are refused).
    hmmlearn logs a notice at construction that its MultinomialHMM changed meaning in
    0.3 (it used to be the CategoricalHMM); bigem's only ever had this meaning and logs
    nothing. With ``n_trials=None``, hmmlearn's ``fit`` overwrites ``n_trials`` with the
    rows' sums; bigem leaves the parameter as given and keeps the rows' common total in
    ``n_trials_``, so that ``sample`` after such a fit draws as hmmlearn's does.
    """
    )
    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)
    _integer_data = True
    # counts with gaps have no multinomial likelihood here: 'fiml' is refused by name
    _constraints = dict(_common("e"), n_trials=_Trials(), missing_values=_params.Choice(("error",)))

    def __init__(
        self,
        n_components=1,
        n_trials=None,
        startprob_prior=1.0,
        transmat_prior=1.0,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="ste",
        init_params="ste",
        implementation="log",
        device="cpu",
        dtype="float32",
        memory_budget=None,
        accelerate=None,
        stopping="gain",
        missing_values="error",
        engine="local",
        client=None,
    ):
        super().__init__(n_components, startprob_prior, transmat_prior, algorithm, random_state, n_iter, tol, verbose,
                         params, init_params, device, dtype, memory_budget, accelerate, stopping, missing_values,
                         engine, implementation, client)
        self.n_trials = n_trials

    def _row_check(self, s, fitting):
        counts = _non_negative_integers("models counts, which must be non-negative integers", "MultinomialHMM", True)
        trials = s.n_trials
        if trials is None or not fitting:  # hmmlearn checks n_trials in fit; a row scores on its own total
            return counts

        def wanted(chunk: Chunk):
            """The trials of the chunk's rows (host data: an int, or a slice of the array)."""
            if not np.ndim(trials):
                return trials
            end = chunk.row_start + chunk.x.shape[0]
            if end > trials.shape[0]:
                raise DataError(f"n_trials gives {trials.shape[0]} rows' trials but X has more rows; pass one "
                                "per row of X, or one int for all")
            return trials[chunk.row_start:end]

        def broken(chunk: Chunk) -> torch.Tensor:
            sums = chunk.x.sum(1)
            want = torch.as_tensor(wanted(chunk), dtype=sums.dtype).to(sums.device, non_blocking=True)
            return counts.broken(chunk) | (sums != want).any()

        def check(chunk: Chunk) -> None:
            counts(chunk)
            want = wanted(chunk)
            sums = chunk.x.sum(1).cpu().numpy()
            bad = np.nonzero(sums != want)[0]
            if bad.size:
                r = int(bad[0])
                need = want if np.ndim(want) == 0 else want[r]
                raise DataError(f"X row {chunk.row_start + r} counts {sums[r]:g} trials but n_trials says {int(need)}: "
                                "each row's counts must add up to the number of trials")

        return RowRule(check, broken)

    def _open(self, X, lengths, s, columns=None, sequence_column=None, fitting=False, engine=None, keep=None):
        source = super()._open(X, lengths, s, columns, sequence_column, fitting, engine, keep)
        if fitting and np.ndim(s.n_trials) and s.n_trials.shape[0] != source.n_rows:
            raise DataError(f"n_trials holds {s.n_trials.shape[0]} rows' trials but X has {source.n_rows} rows; pass "
                            "one per row of X, or one int for all")
        return source

    def _advice(self, s) -> str:
        return "give every category a non-zero probability in some state (emissionprob_)"

    def _emission(self, s, n_features=None) -> MultinomialEmission:
        trials = s.n_trials
        if np.ndim(trials):
            unique = np.unique(trials)
            trials = int(unique[0]) if unique.size == 1 else None
        return MultinomialEmission(trials, s.dtype, advice=self._advice(s))

    def _init_emission(self, s, source, summary, generator, engine) -> None:
        low, high = summary.row_totals
        self.n_trials_ = int(high) if low == high and high >= 1 else None
        # hmmlearn's MultinomialHMM reads init_params itself: no "Even though ..." log for 'e'
        if "e" in s.init_params or not hasattr(self, "emissionprob_"):
            self.emissionprob_ = _random_rows(s.n_components, source.n_features, generator)

    def _emission_params(self, s, emission) -> MultinomialEmissionParams:
        K = s.n_components
        e = _params.as_f64(self.emissionprob_, "emissionprob_")
        D = e.shape[-1] if e.ndim == 2 else -1
        _params.check_shape(e, (K, D), "emissionprob_")
        if bool((e < 0).any()) or not torch.allclose(e.sum(1), torch.ones(K, dtype=torch.float64)):
            raise ParameterError(f"emissionprob_ rows must be probabilities summing to 1 (got row sums of "
                                 f"{e.sum(1).numpy()})")
        return MultinomialEmissionParams(e)

    def _emission_width(self, emission: MultinomialEmissionParams) -> int:
        return int(emission.probabilities.shape[-1])

    def _set_emission(self, p: MultinomialEmissionParams) -> None:
        self.emissionprob_ = p.probabilities.numpy().copy()

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        return {"e": s.n_components * (n_features - 1)}

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """One sequence of ``n_samples`` rows of counts: (X, states). Needs one number of
        trials for all rows (hmmlearn's rule): ``n_trials``, else the one every row of the
        fit held (``n_trials_``). As ``GaussianHMM.sample`` otherwise."""
        s = self._sampling_settings()
        self._fitted(s)  # an unfitted model says so first, as hmmlearn's does
        if s.n_trials is None or np.unique(s.n_trials).size != 1:
            raise ParameterError("For sampling, a single n_trials must be given: set n_trials to the number of "
                                 "trials of every row")
        return super().sample(n_samples, random_state, currstate)

    def _sampling_settings(self):
        s = self._inference_settings()
        fitted = getattr(self, "n_trials_", None)
        return s if s.n_trials is not None or fitted is None else dataclasses.replace(s, n_trials=fitted)

    def _fitted_state(self) -> dict:
        return {**super()._fitted_state(), "n_trials": getattr(self, "n_trials_", None) or 0}

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.n_trials_ = _params.Stored(state).count("n_trials", 0) or None

    def _hmmlearn_emitter(self):
        """hmmlearn's: scipy's ``multinomial.rvs``, which sets the last probability to 1
        less the others (where that differs from it by more than 1e-15), then draws
        ``multinomial`` from the RandomState."""
        n = int(np.unique(self._sampling_settings().n_trials)[0])
        probs = np.array(self.emissionprob_, dtype=np.float64)
        last = 1.0 - probs[:, :-1].sum(1)
        probs[:, -1] = np.where(np.abs(last) > 1e-15, last, probs[:, -1])
        return lambda state, rs: rs.multinomial(n, probs[state])
