"""A finite mixture over any component (see ``components``): weights, responsibilities,
re-seeding. Math only.

The E-step of a chunk returns :class:`MixtureStats` (float64, additive); the M-step
reads the statistics alone. Parameters are float64 and immutable; the E-step casts
them to the compute dtype once per call and walks the chunk in cache-sized blocks of
rows: the component's log-densities, the responsibilities (a softmax over K, in place)
and the component's weighted sums, without leaving the block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .._core import numerics
from .._core.errors import ComponentReseededWarning, EmptyRowWarning, NumericalError
from .._core.protocols import Note, Objective, Report, Step
from .._core.stats import Lowest, additive, counted, least, least_of, shared, summed
from .._core.types import Chunk
from .._core.workspace import Workspace
from .components import Component, blocks, weighted_median
from .gaps import any_set, empty_rows, missing

# A component whose responsibility mass falls under this fraction of one average
# row has lost its support and is re-seeded (a component may set its own floor,
# ``min_support``).
_MIN_SUPPORT = 1e-6
_EXP_FLOOR = {torch.float32: -69.0, torch.float64: -690.0}


@dataclass(frozen=True, slots=True)
class MixtureParams:
    """weights (K,) float64, and the component's parameters, whose fields read through:
    ``p.means`` is ``p.component.means`` (callbacks see these parameters). ``reseeded``
    (K,) bool marks the components this run has re-seeded for lost support (None: none):
    one that loses it again is kept at its vanishing weight, not re-seeded in a cycle."""

    weights: Tensor
    component: Any
    reseeded: Tensor | None = None

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def log_weights(self) -> Tensor:
        """(K,) what the E-step adds to each component's log-density: log w_k."""
        return torch.log(self.weights)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probe dunders before the slots are set
            raise AttributeError(name)
        return getattr(self.component, name)

    def to(self, device: torch.device | str) -> MixtureParams:
        marks = None if self.reseeded is None else self.reseeded.to(device)
        return MixtureParams(self.weights.to(device), self.component.to(device), marks)


@additive
@dataclass(frozen=True, slots=True)
class MixtureStats:
    """Additive E-step statistics, float64: the component's (whose ``n_k`` count the
    weights), loglik = sum_n w_n log p(x_n), weight = sum_n w_n, the row count, the
    worst-explained rows (re-seeding candidates), the rows with no observed value
    (``empty``; they count as rows, with log-density 0 and the weights as posterior), and,
    for models that track it (variational bounds), neg_entropy = sum_n w_n sum_k r_nk log r_nk
    (else 0)."""

    component: Any
    loglik: Tensor
    weight: Tensor
    worst: Lowest
    rows: int = counted()
    # rows with every value missing (gaps allowed only; a 0-d tensor where reads are deferred)
    empty: int | Tensor = counted(default=0)
    neg_entropy: Tensor | float = summed(default=0.0)
    # the first row of positive weight with no finite density, -1 for none (see first_unexplained)
    unexplained: Tensor | int = least(default=-1)
    # the kernel's dtype, for the message about that row
    kernel_dtype: torch.dtype = shared(default=torch.float64)

    def blend(self, new: MixtureStats, gamma: float) -> MixtureStats:
        """(1 - gamma) self + gamma new, re-expressed like new: online EM's running average.

        Both should be normalised to unit weight. The row count is new's: it sets the
        M-step's scale for a dead component (support below a few rows of one batch). So
        is the kernel dtype: a float32 fit computes a batch in float64 where its parameters
        call for it, and the running average, gathered under earlier parameters, may
        have been computed in the other.
        """
        mine = replace(self, component=self.component.rebase(new.component), kernel_dtype=new.kernel_dtype)
        return replace(mine.scale(1.0 - gamma) + new.scale(gamma), rows=new.rows)


@additive
@dataclass(frozen=True, slots=True)
class ScoreTotals:
    """Additive totals that score a fitted mixture on data, whatever its size:
    loglik = sum_n w_n log p(x_n); hard = sum_n w_n max_k log r_nk (the classification
    term of ICL); entropy = sum_n w_n (-sum_k r_nk log r_nk) (the posteriors' entropy,
    latent class analysis's measure of separation; 0 unless asked for, as it costs a
    log per row and component); weight = sum_n w_n (the row count
    when unweighted); rows; fractional:
    the rows whose weight is not a whole number (frequency weights are counts);
    unexplained: the first row of positive weight with no finite density (-1: none).

    A chunk's totals are 0-d float64 tensors on its device (summed in float64), so a pass
    over a GPU reads nothing back per chunk: :meth:`settled` reads them once, as Python
    numbers, and raises for an unexplained row. Settled totals still add (Dask's
    partitions, a process group's parts)."""

    loglik: Tensor | float
    hard: Tensor | float
    weight: Tensor | float
    rows: int = counted()
    fractional: Tensor | int = counted()
    unexplained: Tensor | int = least(default=-1)
    kernel_dtype: torch.dtype = shared(default=torch.float64)
    entropy: Tensor | float = 0.0

    def settled(self, of: str = "X") -> ScoreTotals:
        """The totals as Python numbers, read back in one copy; raises
        :class:`NumericalError` naming the first row no component explains (a row of
        ``of``)."""
        values = [self.loglik, self.hard, self.weight, self.fractional, self.unexplained, self.entropy]
        tensors = [v for v in values if isinstance(v, Tensor)]
        if tensors:  # one read-back for the lot
            device = tensors[0].device
            read = iter(torch.stack([v.to(device, torch.float64).reshape(()) for v in tensors]).tolist())
            values = [next(read) if isinstance(v, Tensor) else v for v in values]
        loglik, hard, weight, fractional, unexplained, entropy = values
        if unexplained >= 0:
            raise_unexplained(int(unexplained), self.kernel_dtype, of)
        return ScoreTotals(float(loglik), float(hard), float(weight), int(self.rows), int(fractional), -1,
                           self.kernel_dtype, float(entropy))


def weighted_sum(values: Tensor, w: Tensor | None) -> Tensor:
    """sum_n w_n values_n in float64 (plain sum when unweighted)."""
    return values.sum(dtype=torch.float64) if w is None else values.double() @ w.double()


def check_explained(log_norm: Tensor, w: Tensor | None, row_start: int, of: str = "X") -> None:
    """Refuse rows of positive weight whose density is zero under every component in the
    kernel's arithmetic (log-likelihood -inf or NaN): their scores, BIC and posteriors are
    undefined, and a fit would chase them. The message names the first such row (of ``of``)."""
    bad = ~torch.isfinite(log_norm)
    if w is not None:
        bad &= w > 0
    if bool(bad.any()):
        raise_unexplained(row_start + int(torch.nonzero(bad)[0]), log_norm.dtype, of)


def first_unexplained(log_norm: Tensor, w: Tensor | None, row_start: int) -> Tensor:
    """What :func:`check_explained` refuses, as a 0-d int64 tensor on the rows' device:
    the first such row (counted from the source's start), or -1. The fit's E-step keeps
    it in its statistics and the M-step reads it once a pass (:func:`check_statistics`),
    so a pass over a GPU waits on no chunk."""
    bad = ~torch.isfinite(log_norm)
    if w is not None:
        bad &= w > 0
    if bad.numel() == 0:  # no rows (an empty partition): argmax has no first
        return torch.tensor(-1, device=bad.device)
    first = bad.to(torch.uint8).argmax()  # the first True (argmax takes the first maximum)
    return torch.where(bad.any(), first + row_start, -1)


def first_of(a: Tensor | int, b: Tensor | int) -> Tensor | int:
    """The earlier of two :func:`first_unexplained` rows (-1: none), without a read-back."""
    return least_of(a, b)


def check_unexplained(row: Tensor | int, dtype: torch.dtype) -> None:
    """Raise for the row :func:`first_unexplained` found (one read-back), if any."""
    row = int(row)
    if row >= 0:
        raise_unexplained(row, dtype)


def check_statistics(stats: MixtureStats) -> None:
    """Raise, once a pass, what the E-step found (:func:`first_unexplained`)."""
    row = int(stats.unexplained)
    if row >= 0:
        raise_unexplained(row, stats.kernel_dtype)


def raise_unexplained(row: int, dtype: torch.dtype, of: str = "X") -> None:
    name = str(dtype).replace("torch.", "")
    raise NumericalError(
        f"row {row} of {of} has zero density under every component in {name} arithmetic: it lies too far from "
        "every mean for its log-likelihood to be represented, so its score and posteriors are undefined; drop "
        "or rescale that row" + (", or use dtype='float64'" if name == "float32" else "")
    )


def normalise_log(log_joint: Tensor, out: Tensor) -> Tensor:
    """Responsibilities of (K, n) log joints, in place, one exp pass; the log normaliser
    (each row's log-likelihood) goes to ``out`` (n,).

    Columns are shifted by their maximum before exp, so no row underflows to 0/0; a row
    whose every entry is -inf gets -inf as its normaliser (see :func:`check_explained`).
    Component-major, every step is element-wise along n over K rows: vectorised, no
    short inner reductions.
    """
    peak = torch.amax(log_joint, 0)
    lost = torch.isneginf(peak)
    peak.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    # Floor the log-ratios before exp: torch's vectorised exp takes a slow path for large
    # negative inputs (3-7x slower per call), and responsibilities near the underflow
    # limit turn into subnormal numbers in the moment products (squares, sqrt(rw)), which
    # slow the GEMMs several-fold. A floor of 1e-30 (1e-300 in float64) keeps every
    # product normal and changes no statistic visibly.
    floor = _EXP_FLOOR[log_joint.dtype]
    resp = log_joint.sub_(peak).clamp_(min=floor).exp_()
    total = resp.sum(0)
    resp.div_(total)
    torch.add(total.log_(), peak, out=out)
    out.masked_fill_(lost, -torch.inf)  # unconditional: asking whether any is lost would wait on a GPU
    return resp


# How a chunk's E-step gets its responsibilities: from the model ("soft"), one-hot to
# the nearest component ("hard", for initialisation from centres), or from a function
# of the chunk ("given", for random initialisation).
_SOFT, _HARD, _GIVEN = "soft", "hard", "given"


class MixtureModel:
    """The math of a K-component mixture of ``component``.

    Holds hyper-parameters (not data, not parameters) and a scratch workspace.
    ``advice``: what a user can change when the fit breaks down (it names the
    estimator's own parameters).

    Semi-supervised EM (Nigam, McCallum, Thrun & Mitchell 2000) lives here, once for
    every component: ``classes`` (K,) int64 gives the class of each component (several
    components may share one). A chunk's ``label`` (n,) holds each row's class, or -1;
    a labelled row's responsibilities are confined to its class's components (one-hot
    when the class has one), an unlabelled row's are the usual posterior, and its weight
    is multiplied by ``unlabeled_weight`` (Nigam's lambda). The objective is then
    sum_labelled w log p(x, y) + lambda sum_unlabelled w log p(x), which EM increases.

    ``fixed_weights``: the M-step keeps the weights it is given (a structural model
    estimated after its measurement model, ``models.structural``); weights of one add
    nothing to the log-joints, leaving a row's class probabilities to its component.
    """

    def __init__(self, component: Component, n_components: int, dtype: torch.dtype, advice: str | None = None, *,
                 classes: Tensor | None = None, unlabeled_weight: float = 1.0, fixed_weights: bool = False) -> None:
        self.component = component
        self.n_components = n_components
        self.dtype = dtype
        self.advice = advice or component.advice
        self.classes = None if classes is None else torch.as_tensor(classes, dtype=torch.int64)
        self.unlabeled_weight = float(unlabeled_weight)
        self.fixed_weights = bool(fixed_weights)
        self.entropy = False  # whether the E-step sums the responsibilities' entropy (neg_entropy)
        self._ws = Workspace()

    def with_classes(self, classes: Tensor, unlabeled_weight: float = 1.0) -> MixtureModel:
        """The same mixture fitted semi-supervised: ``classes`` (K,) the class of each component."""
        model = MixtureModel(self.component, self.n_components, self.dtype, self.advice, classes=classes,
                             unlabeled_weight=unlabeled_weight, fixed_weights=self.fixed_weights)
        model.entropy = self.entropy
        return model

    # ------------------------------------------------------------------ fixed responsibilities
    @property
    def fixed_statistics(self) -> bool:
        """Whether an E-step gathers the same sufficient statistics at any parameters:
        every row that counts is labelled and its class has one component (unlabelled
        rows weigh 0), so its responsibilities are its label, whatever the parameters.
        Then only the log-likelihood changes, and the component restates it from the
        statistics (``expected_log_density``): EM reads the data once (see ``em.driver``).
        Not with gaps, whose conditional moments depend on the parameters."""
        if self.classes is None or self.unlabeled_weight != 0.0 or self.entropy:
            return False
        if getattr(self.component, "gaps", False) or getattr(self.component, "expected_log_density", None) is None:
            return False
        return int(torch.unique(self.classes).numel()) == int(self.classes.numel())

    def restate(self, stats: MixtureStats, params: MixtureParams) -> MixtureStats:
        """The statistics an E-step at ``params`` gathers, from ``stats`` gathered at other
        parameters, where they are fixed (:attr:`fixed_statistics`): the same moments,
        and the log-likelihood sum_k [n_k log w_k + sum_n r_nk log p_k(x_n)] from them
        (float64, exact algebra). The re-seeding candidates stay the pass's (a class's
        component keeps its rows whatever the parameters)."""
        cs = stats.component
        n_k = cs.n_k
        log_w = params.log_weights.to(device=n_k.device, dtype=torch.float64)
        mixing = torch.where(n_k > 0, n_k * log_w, torch.zeros_like(n_k)).sum()
        return replace(stats, loglik=mixing + self.component.expected_log_density(params.component, cs))

    # ------------------------------------------------------------------ parameters
    def make_params(self, weights: Tensor, *component_args: Tensor) -> MixtureParams:
        """Float64 parameters: weights (K,), then the component's ``make_params`` arguments."""
        return MixtureParams(weights.to(torch.float64), self.component.make_params(*component_args))

    def location(self, params: MixtureParams) -> Tensor | None:
        """Where the mixture sits, (D,) float64 (None for components without a position):
        the weighted median of the components' means where they have them (a component
        of a few far outliers does not move it from the bulk, whose rows then keep their
        digits in a float32 cast), else the component's own location."""
        where = self.component.location(params.component)
        means = getattr(params.component, "means", None)
        if where is None or not isinstance(means, Tensor) or means.ndim != 2:
            return where
        return weighted_median(means, params.weights)

    def translate(self, params: MixtureParams, offset: Tensor | None) -> MixtureParams:
        """The parameters of the same mixture for rows moved by ``offset`` (None: none)."""
        if offset is None:
            return params
        return replace(params, component=self.component.translate(params.component, offset))

    def embed(self, x: Tensor) -> Tensor:
        """Rows in the space initial centres live in (the component's k-means embedding)."""
        return self.component.embed(x)

    def params_at(self, centres: Tensor) -> MixtureParams:
        """Equal weights and a unit component at each centre (K, D): the reference point
        of an initial hard-assignment or random-responsibility pass."""
        K = centres.shape[0]
        weights = torch.full((K,), 1.0 / K, dtype=torch.float64, device=centres.device)
        return MixtureParams(weights, self.component.at(centres))

    def n_free_parameters(self, n_features: int) -> int:
        """Free scalars (for BIC/AIC): the component's plus K - 1 weights (none when fixed)."""
        K = self.n_components
        return self.component.n_free_parameters(K, n_features) + (0 if self.fixed_weights else K - 1)

    def to_tensors(self, params: MixtureParams) -> dict[str, Tensor]:
        # as 0/1 int64: model files and checkpoints (safetensors here) hold no bool tensors
        marks = {} if params.reseeded is None else {"reseeded": params.reseeded.to(torch.int64)}
        return {"weights": params.weights, **self.component.to_tensors(params.component), **marks}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> MixtureParams:
        marks = tensors.get("reseeded")
        return MixtureParams(tensors["weights"].to(torch.float64), self.component.from_tensors(tensors),
                             None if marks is None else marks.to(torch.bool))

    def flatten(self, params: MixtureParams) -> Tensor:
        """[logits of the weights (log w - mean log w), the component's vector]."""
        log_w = torch.log(params.weights)
        return torch.cat([log_w - log_w.mean(), self.component.flatten(params.component)])

    def unflatten(self, vector: Tensor, like: MixtureParams) -> MixtureParams:
        K = like.n_components
        weights = like.weights if self.fixed_weights else torch.softmax(vector[:K], 0)
        return MixtureParams(weights, self.component.unflatten(vector[K:], like.component), like.reseeded)

    def decrease_tolerance(self, params: MixtureParams, value: float) -> float:
        """Largest fall of the mean log-likelihood that rounding and regularisation explain."""
        return self.component.decrease_tolerance(params.component, params.weights, value)

    def prior_gain(self, new: MixtureParams, old: MixtureParams) -> float:
        """The prior's log-density at ``new`` less at ``old`` (0 without one; the weights
        have none): with the log-likelihood, the objective a MAP step increases."""
        return self.component.prior_gain(new.component, old.component)

    # ------------------------------------------------------------------ E-step
    def _inputs(self, params: MixtureParams, device: torch.device) -> tuple[Any, Tensor]:
        """The component's prepared parameters on ``device`` and log w in their dtype."""
        def make() -> tuple[Any, Tensor]:
            prep = self.component.prepare(params.component, device)
            return prep, params.log_weights.to(device=device, dtype=prep.dtype)

        return self._ws.derived("inputs", params, torch.device(device), make)

    def _block_rows(self, n_features: int, device: torch.device) -> int:
        return self.component.block_rows(self.n_components, n_features, device)

    def log_joint(self, params: MixtureParams, x: Tensor) -> Tensor:
        """log w_k + log p_k(x).  x: (n, D) compute dtype -> (n, K)."""
        prep, log_w = self._inputs(params, x.device)
        out = torch.empty(x.shape[0], self.n_components, dtype=prep.dtype, device=x.device)
        for rows in blocks(x.shape[0], self._block_rows(x.shape[1], x.device)):
            out[rows] = self.component.log_joint(prep, self.component.block(prep, x[rows]), log_w).T
        return out

    def score_totals(self, params: MixtureParams, chunk: Chunk, entropy: bool = False) -> ScoreTotals:
        """One chunk's :class:`ScoreTotals`: the E-step's log-likelihoods (its kernels and
        dtype, component-major, so the fit's lower bound and the score agree), without the
        statistics; per-row values in the kernel dtype, summed in float64. ``entropy``:
        the posteriors' entropy too."""
        x, w = chunk.x, chunk.weight
        prep, log_w = self._inputs(params, x.device)
        log_norm = self._ws.get("log_norm", (x.shape[0],), prep.dtype, x.device)
        hard = self._ws.get("log_max_resp", (x.shape[0],), prep.dtype, x.device)
        ent = self._ws.get("resp_entropy", (x.shape[0],), prep.dtype, x.device) if entropy else None
        for rows in blocks(x.shape[0], self._block_rows(x.shape[1], x.device)):
            lj = self.component.log_joint(prep, self.component.block(prep, x[rows]), log_w)
            resp = normalise_log(lj, out=log_norm[rows])
            torch.log(resp.amax(0), out=hard[rows])
            if ent is not None:
                torch.sum(torch.xlogy(resp, resp), 0, out=ent[rows]).neg_()
        # nothing read back: a pass over a GPU waits on no chunk (ScoreTotals.settled reads once)
        unexplained = first_unexplained(log_norm, w, chunk.row_start)
        if w is not None:  # rows of weight 0 count nothing, whatever their density (as in the E-step)
            log_norm = torch.where(w > 0, log_norm, torch.zeros_like(log_norm))
            hard = torch.where(w > 0, hard, torch.zeros_like(hard))
            ent = None if ent is None else torch.where(w > 0, ent, torch.zeros_like(ent))
        f64 = dict(dtype=torch.float64, device=x.device)
        weight = torch.full((), float(x.shape[0]), **f64) if w is None else w.double().sum()  # a fill: no upload
        fractional = 0 if w is None else (w != torch.round(w)).sum()
        return ScoreTotals(weighted_sum(log_norm, w), weighted_sum(hard, w), weight, x.shape[0], fractional,
                           unexplained, prep.dtype, 0.0 if ent is None else weighted_sum(ent, w))

    def e_step(self, params: MixtureParams, chunk: Chunk) -> MixtureStats:
        """Responsibility-weighted statistics of one chunk under ``params``."""
        return self._stats(params, chunk, _SOFT, None)

    def e_step_hard(self, params: MixtureParams, chunk: Chunk) -> MixtureStats:
        """Statistics with one-hot responsibilities to the nearest component (the
        component's ``nearest``: Euclidean to the means for Gaussians). Initialisation
        uses it to turn k-means centres into mixture parameters."""
        return self._stats(params, chunk, _HARD, None)

    def e_step_given(self, params: MixtureParams, chunk: Chunk, resp_fn: Callable[[Chunk], Tensor],
                     weighted: bool = True) -> MixtureStats:
        """Statistics for responsibilities supplied by ``resp_fn(chunk) -> (n, K)`` (random
        init); ``weighted=False`` leaves the rows' sample weights out (StepMix's start)."""
        return self._stats(params, chunk, _GIVEN, resp_fn, weighted)

    def _supervision(self, chunk: Chunk) -> tuple[Tensor | None, Tensor | None]:
        """(the chunk's weights with unlabelled rows times ``unlabeled_weight``, the (K, n)
        mask of the components each labelled row may not belong to), or the chunk's own
        weights and None when nothing is labelled."""
        w, label = chunk.weight, chunk.label
        if label is None or self.classes is None:
            return w, None
        label = label.to(chunk.x.device)
        unlabelled = label < 0
        # where reads are deferred (a GPU's chunks) nothing asks whether the chunk has
        # unlabelled rows or labelled ones: the scale and the mask give the same answer
        # when it has none of either
        deferred = numerics.defers_reads(label.device)
        if self.unlabeled_weight != 1.0 and (deferred or bool(unlabelled.any())):
            # float64 from the start: torch.where on Python numbers makes float32 (0.3 off by 4e-8);
            # masked_fill, as a boolean index would find the rows first (a wait on a GPU)
            scale = torch.ones(label.shape, dtype=torch.float64, device=label.device)
            scale.masked_fill_(unlabelled, self.unlabeled_weight)
            w = scale if w is None else w.double() * scale
        if not deferred and bool(unlabelled.all()):
            return w, None
        classes = self.classes.to(chunk.x.device)
        return w, (classes[:, None] != label[None, :]) & ~unlabelled[None, :]

    def _stats(self, params: MixtureParams, chunk: Chunk, mode: str, resp_fn: Callable[[Chunk], Tensor] | None,
               weighted: bool = True) -> MixtureStats:
        x = chunk.x
        w, barred = self._supervision(chunk) if mode == _SOFT else (chunk.weight if weighted else None, None)
        device = x.device
        K, comp = self.n_components, self.component
        prep, log_w = self._inputs(params, device)
        kdt = prep.dtype
        acc = comp.accumulator(prep)
        # each row's log-likelihood, kept for the chunk: its sum and its K lowest rows
        # (re-seeding candidates) then take two whole-chunk passes rather than a few
        # small ops per block, whose fixed costs showed in the profile
        log_norm = self._ws.get("log_norm", (x.shape[0],), kdt, device)
        given = resp_fn(chunk) if mode == _GIVEN else None
        # weights (float64) enter the kernels divided by the chunk's largest, and the sums
        # are scaled back in float64: weights of any magnitude (1e-50, 1e37) are exact
        # where the kernel dtype would underflow or overflow on them
        # (the largest stays a tensor: reading it would wait on a GPU once a chunk)
        top = None if w is None else w.max().double()
        top = None if top is None else torch.where(top > 0, top, torch.ones_like(top))
        relative = None if w is None else (w / top).to(kdt)
        neg_entropy = torch.zeros((), dtype=torch.float64, device=device)
        gaps = missing(x, self._ws) if getattr(comp, "gaps", False) else None  # one reduction when there is none
        order = None  # the order in which the blocks read the rows, if the component has one
        # a component may do a block's log-joint, normalisation and sums in one kernel
        # (``expect``, True when it did); the entropy term is the tensor path's alone
        fused = getattr(comp, "expect", None) if mode == _SOFT and not self.entropy else None
        if gaps is not None and hasattr(comp, "expect_gaps"):  # e.g. factor every missing pattern at once
            order = comp.expect_gaps(prep, gaps)
        for rows in blocks(x.shape[0], self._block_rows(x.shape[1], device)):
            ln = log_norm[rows]  # in the order read; put back in the chunk's after the loop
            read = rows
            if order is not None:
                rows = order[rows]
            wb = None if w is None else relative[rows]
            # in the component's order: one gather (2.6x x[rows]) into a buffer that stays mapped
            xb = x[rows] if order is None else torch.index_select(
                x, 0, rows, out=self._ws.get("ordered_rows", (rows.shape[0], x.shape[1]), x.dtype, device))
            if order is None:
                blk = comp.block(prep, xb)
            else:  # the component read the chunk's gaps (expect_gaps): their rows' part of it, and
                # where in its order the rows are (a component with expect_gaps takes both)
                mb = torch.index_select(gaps, 0, rows, out=self._ws.get("ordered_gaps", tuple(xb.shape), torch.bool, device))
                blk = comp.block(prep, xb, read=read, mask=mb)
            if mode == _HARD:
                labels, score = comp.nearest(prep, blk)
                ln.copy_(score)
                resp = torch.nn.functional.one_hot(labels, K).T.to(kdt)
            elif mode == _GIVEN:
                resp = given[rows].T.to(kdt)
                ln.zero_()
            elif fused is not None and fused(prep, blk, log_w, None if barred is None else barred[:, rows], wb, ln, acc,
                                             _EXP_FLOOR[kdt]):
                continue
            else:
                lj = comp.log_joint(prep, blk, log_w)
                if barred is not None:
                    lj.masked_fill_(barred[:, rows], -torch.inf)
                resp = normalise_log(lj, out=ln)
                if self.entropy:
                    neg_entropy += weighted_sum(torch.special.xlogy(resp, resp).sum(0), wb)
            acc.add(blk, resp if wb is None else resp * wb, wb)
        if order is not None:
            log_norm = self._ws.get("log_norm_rows", log_norm.shape, kdt, device).scatter_(0, order, log_norm)
        unexplained = first_unexplained(log_norm, w, chunk.row_start)
        if w is not None:  # rows of weight 0 count nothing, whatever their density
            log_norm = torch.where(w > 0, log_norm, torch.zeros_like(log_norm))
        loglik = weighted_sum(log_norm, w)
        candidates = log_norm if w is None else torch.where(w > 0, log_norm, torch.inf)
        empty: int | Tensor = 0
        if gaps is not None:  # a row with nothing observed explains nothing: never a seed
            blank = empty_rows(gaps)
            if numerics.defers_reads(device):  # counted on the device, read once a pass (by the M-step)
                empty = blank.sum()
                candidates = torch.where(blank, torch.inf, candidates)
            else:
                empty = int(blank.sum()) if any_set(blank) else 0  # no (n,) int64 conversion in the common case
                if empty:
                    candidates = torch.where(blank, torch.inf, candidates)
        # a fill, not torch.tensor: on a GPU that uploads the value and waits, every chunk
        weight = torch.full((), float(x.shape[0]), dtype=torch.float64, device=device) if w is None else w.double().sum()
        stats = acc.result() if top is None else acc.result().scale(top)
        if top is not None:
            neg_entropy = neg_entropy * top
        return MixtureStats(stats, loglik, weight, Lowest.of(candidates, x, K, chunk.row_start), chunk.n_rows, empty, neg_entropy,
                            unexplained, kdt)

    def objective(self, stats: MixtureStats) -> Objective:
        """The weighted log-likelihood of the parameters the statistics were gathered under."""
        check_statistics(stats)
        return Objective(float(stats.loglik), float(stats.weight))

    def impute(self, params: MixtureParams, chunk: Chunk, uniforms: Tensor | None = None,
               normals: Tensor | None = None) -> Tensor:
        """The chunk's rows with every gap completed, (n, D) float64: by the conditional mean
        given the row's observed values, or with ``uniforms`` (n,) and ``normals`` (n, D) a
        draw from the conditional distribution (the component's ``impute``)."""
        x = chunk.x
        prep, log_w = self._inputs(params, x.device)
        out = torch.empty(x.shape[0], x.shape[1], dtype=torch.float64, device=x.device)
        log_norm = self._ws.get("log_norm", (x.shape[0],), prep.dtype, x.device)
        for rows in blocks(x.shape[0], self._block_rows(x.shape[1], x.device)):
            resp = normalise_log(self.component.log_joint(prep, self.component.block(prep, x[rows]), log_w), out=log_norm[rows])
            draw = {} if uniforms is None else {"uniforms": uniforms[rows], "normals": normals[rows]}
            out[rows] = self.component.impute(prep, x[rows], resp, **draw)
        check_explained(log_norm, None, chunk.row_start)
        return out

    # ------------------------------------------------------------------ M-step
    def m_step(self, stats: MixtureStats, params: MixtureParams | None = None) -> Step[MixtureParams]:
        """Closed-form maximiser of the expected complete log-likelihood (float64).

        Components that lost their support, or whose parameters are invalid (a
        covariance that is not positive definite), are re-seeded at the worst-explained
        rows; the report says so, which exempts the step from the monotonicity check. A
        component re-seeded once for lost support that loses it again is kept, at its
        vanishing weight, with its valid parameters (as scikit-learn keeps every emptied
        component): the data hold fewer clusters than asked for, and re-seeding it again
        would only start the same cycle, each turn a jump that keeps the fit from converging.
        One re-seeded once whose parameters turn invalid again (a covariance collapsed
        onto repeated rows, again) cannot be kept: the fit fails, as scikit-learn's does
        at the first collapse.
        """
        check_statistics(stats)
        cs = stats.component
        avg_row = float(stats.weight) / max(stats.rows, 1)
        # scikit-learn's 10 eps floor, relative to the average row's weight (1 when
        # unweighted): weights of 1e-20 had met an absolute floor as large as themselves
        n_k = cs.n_k + 10 * torch.finfo(torch.float64).eps * avg_row
        old = params.component if params is not None else None
        marks = None if params is None else params.reseeded
        new, valid = self.component.m_step(replace(cs, n_k=n_k), old, self.component.letters)
        weights = params.weights.to(n_k) if self.fixed_weights and params is not None else n_k / n_k.sum()
        # a component whose step is no plain ascent (a Newton step) exempts it from the check
        ascent = bool(getattr(self.component, "ascent", True))
        support = getattr(self.component, "min_support", _MIN_SUPPORT)
        starved = cs.n_k < support * avg_row
        invalid = ~valid.to(n_k.device)
        empty = int(stats.empty)  # a device count where reads are deferred: read here, once a pass
        notes = () if not empty else (Note(
            EmptyRowWarning,
            f"{empty} row(s) have every value missing (counted {{when}}): they carry no information, count as rows "
            "(log-density 0) and take the mixture weights as their posterior; drop them to leave them out",
            once=True,
        ),)
        kept = starved & ~invalid & marks.to(n_k.device) if marks is not None else torch.zeros_like(starved)
        if bool(kept.any()):
            notes += (Note(
                ComponentReseededWarning,
                f"components {torch.nonzero(kept).reshape(-1).tolist()} lost their support again {{when}} after "
                "being re-seeded: they are kept at a vanishing weight, as the data hold fewer clusters than "
                f"n_components; {self.advice}",
                once=True,
            ),)
        if marks is not None and bool((invalid & marks.to(n_k.device)).any()):
            again = torch.nonzero(invalid & marks.to(n_k.device)).reshape(-1).tolist()
            raise NumericalError(f"{self.component.failure} (components {again} turned invalid again after being "
                                 f"re-seeded; {self.advice})")
        dead = (starved | invalid) & ~kept
        if not bool(dead.any()):
            # a component with a prior (pseudo-counts) takes a MAP step: the likelihood may
            # then fall by what the prior's log-density gained, per unit of weight
            gain = 0.0 if old is None else self.component.prior_gain(new, old) / max(float(stats.weight), 1e-300)
            return Step(MixtureParams(weights, new, marks), Report(exact=ascent, smooth=True, notes=notes,
                                                                   total=float(stats.loglik), prior_gain=gain))
        idx = torch.nonzero(dead).reshape(-1).tolist()
        rows = stats.worst.ordered()
        live = ~dead & ~kept
        if int(live.sum()) == 0 or len(idx) > rows.shape[0]:
            raise NumericalError(
                f"{self.component.failure} (components {idx} have no support or invalid parameters; {self.advice})"
            )
        new = self.component.reseed(new, idx, rows[: len(idx)], weights)
        if not self.fixed_weights:
            weights = weights.clone()
            weights[idx] = weights[live].mean()
            weights = weights / weights.sum()
        marks = (torch.zeros_like(starved) if marks is None else marks.to(starved.device)) | dead
        note = Note(
            ComponentReseededWarning,
            f"components {idx} lost their support {{when}} and were re-seeded at the worst-explained rows; "
            f"if this recurs, {self.advice}",
        )
        return Step(MixtureParams(weights, new, marks), Report(exact=False, notes=notes + (note,),
                                                               total=float(stats.loglik)))

    # ------------------------------------------------------------------ sampling
    def sample(self, params: MixtureParams, n_samples: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw n rows and their component labels (float64, on the params' device)."""
        labels = torch.multinomial(params.weights.cpu(), n_samples, replacement=True, generator=generator)
        labels, _ = torch.sort(labels)
        x = self.component.sample(params.component, labels, generator)
        return x, labels.to(x.device)

