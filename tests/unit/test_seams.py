"""The seams every family relies on: statistics obey the laws of addition, parameters
map to tensors and to one unconstrained vector and back, hyper-parameters survive a
model file, and the component protocol serves a mixture and an HMM alike."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bigem import GaussianMixture, load
from bigem._core.stats import Lowest, tree_sum
from bigem._core.types import Chunk, SequenceChunk
from bigem.models.bernoulli import BernoulliComponent
from bigem.models.categorical import CategoricalComponent, CategoricalParams
from bigem.models.covariance import NAMES, structure
from bigem.models.gaussian import GaussianComponent, gaussian_mixture
from bigem.models.hmm import HMMModel, HMMParams
from bigem.models.hmm_gmm import GMMEmission
from bigem.models.kmeans import KMeansModel, KMeansParams
from bigem.models.mixture import MixtureModel
from bigem.models.multinomial import MultinomialParams, multinomial_mixture
from bigem._core.sparse import SparseRows
from bigem.models.poisson import PoissonComponent
from bigem.models.product import Part, ProductComponent
from bigem.models.summary import Summariser

K, D = 3, 4
FAMILIES = ("bernoulli", "categorical", "poisson", "product")  # the discrete families' seams (see _family_model)


def _cov(name: str, rng) -> torch.Tensor:
    a = rng.normal(size=(K, D, D))
    full = torch.from_numpy(a @ a.transpose(0, 2, 1) + np.eye(D))
    return structure(name).from_dense(full).clone()


def _gaussian_params(comp: GaussianComponent, rng):
    return comp.make_params(torch.from_numpy(rng.normal(0, 3, (K, D))), _cov(comp.covariance_type, rng))


def _hmm(emission, emission_params, rng):
    start = torch.from_numpy(rng.dirichlet(np.ones(K)))
    trans = torch.from_numpy(rng.dirichlet(np.ones(K), size=K))
    return HMMModel(emission, K, torch.float64, params="st" + emission.letters), HMMParams(start, trans, emission_params)


def _cases():
    """(name, make(rng) -> (e_step(chunk_slice a, b) -> stats)) for every statistics kind."""
    cases = []
    for ct in NAMES:
        def mixture(rng, ct=ct):
            model = gaussian_mixture(K, ct, 1e-6, torch.float64)
            p = model.make_params(torch.from_numpy(rng.dirichlet(np.ones(K))), *(
                lambda q: (q.means, q.covariances))(_gaussian_params(model.component, rng)))
            x = torch.from_numpy(rng.normal(0, 3, (90, D)))
            w = torch.from_numpy(rng.uniform(0, 2, 90))
            return lambda a, b: model.e_step(p, Chunk(x[a:b], w[a:b], a))
        cases.append((f"mixture-{ct}", mixture))

    def kmeans(rng):
        model = KMeansModel(K, torch.float64)
        p = KMeansParams(torch.from_numpy(rng.normal(0, 3, (K, D))))
        x = torch.from_numpy(rng.normal(0, 3, (90, D)))
        return lambda a, b: model.e_step(p, Chunk(x[a:b], None, a))

    def summary(rng):
        x = torch.from_numpy(rng.normal(0, 3, (90, D)))
        task = Summariser(torch.zeros(D, dtype=torch.float64))
        return lambda a, b: task.summarise(Chunk(x[a:b], None, a))

    def scores(rng):
        model = gaussian_mixture(K, "diag", 1e-6, torch.float64)
        p = model.make_params(torch.full((K,), 1 / K, dtype=torch.float64), torch.from_numpy(rng.normal(0, 3, (K, D))),
                              torch.ones(K, D, dtype=torch.float64))
        x = torch.from_numpy(rng.normal(0, 3, (90, D)))
        return lambda a, b: model.score_totals(p, Chunk(x[a:b], None, a), entropy=True)  # every total

    def hmm_of(kind):
        def make(rng):
            if kind == "gaussian":
                comp = GaussianComponent("full")
                model, p = _hmm(comp, _gaussian_params(comp, rng), rng)
                x = torch.from_numpy(rng.normal(0, 3, (90, D)))
            elif kind == "categorical":
                comp = CategoricalComponent(5)
                model, p = _hmm(comp, comp.make_params(torch.from_numpy(rng.dirichlet(np.ones(5), size=K))), rng)
                x = torch.from_numpy(rng.integers(0, 5, (90, 1)).astype(float))
            elif kind == "poisson":
                comp = PoissonComponent()
                model, p = _hmm(comp, comp.make_params(torch.from_numpy(rng.uniform(1, 5, (K, D)))), rng)
                x = torch.from_numpy(rng.poisson(3, (90, D)).astype(float))
            else:
                comp = GMMEmission(K, 2, "diag")
                weights = torch.from_numpy(rng.dirichlet(np.ones(2), size=K))
                means = torch.from_numpy(rng.normal(0, 3, (K, 2, D)))
                model, p = _hmm(comp, comp.make_params(weights, means, torch.ones(K, 2, D, dtype=torch.float64)), rng)
                x = torch.from_numpy(rng.normal(0, 3, (90, D)))
            lengths = [30, 20, 25, 15]  # split points fall between sequences
            starts = np.cumsum([0] + lengths)

            def e_step(a, b):
                i, j = int(np.searchsorted(starts, a)), int(np.searchsorted(starts, b))
                return model.e_step(p, SequenceChunk(x[a:b], torch.tensor(lengths[i:j]), a, i))

            e_step.bounds = starts
            return e_step
        return make

    def family(kind, labelled=False):
        def make(rng):
            model, p, x = _family_model(kind, rng)
            w = torch.from_numpy(rng.uniform(0, 2, 90))
            label = torch.from_numpy(np.where(rng.random(90) < 0.5, rng.integers(0, 2, 90), -1))
            if labelled:
                model = model.with_classes(torch.tensor([0, 1, 1]), 0.3)
            return lambda a, b: model.e_step(p, Chunk(x[a:b], w[a:b], a, label=label[a:b] if labelled else None))
        return make

    cases += [(f"mixture-{k}", family(k)) for k in FAMILIES]
    cases += [("mixture-product-semi-supervised", family("product", labelled=True))]

    def multinomial(rng):
        model = multinomial_mixture(K, 0.5, torch.float64)
        p = model.make_params(torch.from_numpy(rng.dirichlet(np.ones(K))),
                              torch.from_numpy(rng.dirichlet(np.ones(7), size=K)))
        x = SparseRows.from_dense(torch.from_numpy(rng.poisson(1.0, (90, 7)).astype(float)))
        w = torch.from_numpy(rng.uniform(0, 2, 90))
        return lambda a, b: model.e_step(p, Chunk(x[a:b], w[a:b], a))

    cases += [("kmeans", kmeans), ("row-summary", summary), ("score-totals", scores), ("mixture-multinomial", multinomial)]
    cases += [(f"hmm-{k}", hmm_of(k)) for k in ("gaussian", "categorical", "poisson", "gmm")]
    return cases


def _tensors(stats, candidates: bool) -> list:
    """Every summed value of a statistics object (nested ones flattened), as tensors;
    with ``candidates``, the re-seeding candidates too (a min-monoid: it adds, but
    adding a part to itself does not double it)."""
    import dataclasses

    out = []
    for f in dataclasses.fields(stats):
        v = getattr(stats, f.name)
        if f.metadata.get("combine", "sum") != "sum":
            continue
        for item in v if isinstance(v, tuple) else (v,):  # a product's parts
            if isinstance(item, Lowest):
                if candidates:
                    out.append(torch.sort(item.values).values)
            elif dataclasses.is_dataclass(item):
                out += _tensors(item, candidates)
            else:
                out.append(torch.as_tensor(item, dtype=torch.float64))
    return out


def _close(a, b, candidates: bool = True):
    for x, y in zip(_tensors(a, candidates), _tensors(b, candidates), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("name, make", _cases(), ids=[c[0] for c in _cases()])
def test_statistics_are_associative_commutative_and_scale(name, make):
    e_step = make(np.random.default_rng(0))
    bounds = getattr(e_step, "bounds", [0, 30, 50, 75, 90])
    parts = [e_step(a, b) for a, b in zip(bounds, bounds[1:])]
    whole = e_step(0, 90)
    _close(tree_sum(parts), whole)  # grouping
    _close(sum(parts[1:], parts[0]), whole)
    _close(sum(reversed(parts[:-1]), parts[-1]), whole)  # order
    doubled = parts[0].scale(2.0)
    _close(doubled, parts[0] + parts[0], candidates=False)  # scaling is repeated addition


def test_statistics_gathered_under_different_parameters_do_not_add():
    rng = np.random.default_rng(1)
    model = gaussian_mixture(K, "full", 1e-6, torch.float64)
    x = torch.from_numpy(rng.normal(0, 3, (50, D)))
    a = model.make_params(torch.full((K,), 1 / K, dtype=torch.float64), x[:K], torch.eye(D, dtype=torch.float64).expand(K, D, D))
    b = model.make_params(torch.full((K,), 1 / K, dtype=torch.float64), x[K : 2 * K], torch.eye(D, dtype=torch.float64).expand(K, D, D))
    with pytest.raises(ValueError, match="gathered under different 'shift'"):
        model.e_step(a, Chunk(x, None, 0)) + model.e_step(b, Chunk(x, None, 0))


# ---------------------------------------------------------------------- the discrete families

def _family_model(kind: str, rng, dtype=torch.float64):
    """(a 3-component mixture of ``kind``, its parameters, 90 rows it reads) for the seams'
    tests: a categorical block has columns of 2, 3 and 4 categories and some codes -1
    (ignored unknown categories); a product has a block of every family."""
    from bigem.models.mixture import MixtureParams

    w = torch.from_numpy(rng.dirichlet(np.ones(K)))
    n = 90

    def categorical(columns):
        sizes = (2, 3, 4)
        comp = CategoricalComponent(sizes, 1.5, dtype)
        probs = torch.cat([torch.from_numpy(rng.dirichlet(np.ones(m), size=K)) for m in sizes], 1)
        x = np.stack([rng.integers(0, m, n) for m in sizes], 1).astype(float)
        x[rng.random((n, 3)) < 0.1] = -1
        return Part("categorical", comp, columns), comp.make_params(probs), x

    def bernoulli(columns):
        comp = BernoulliComponent(0.5, dtype)
        return (Part("bernoulli", comp, columns), comp.make_params(torch.from_numpy(rng.uniform(0.1, 0.9, (K, 2)))),
                rng.integers(0, 2, (n, 2)).astype(float))

    def poisson(columns):
        comp = PoissonComponent(1.0, 0.0, dtype)
        return (Part("poisson", comp, columns), comp.make_params(torch.from_numpy(rng.uniform(1, 5, (K, 2)))),
                rng.poisson(3, (n, 2)).astype(float))

    def gaussian(columns):
        comp = GaussianComponent("diag", 1e-6, dtype)
        q = comp.make_params(torch.from_numpy(rng.normal(0, 3, (K, 2))), torch.from_numpy(rng.uniform(0.5, 2, (K, 2))))
        return Part("gaussian", comp, columns), q, rng.normal(0, 3, (n, 2))

    makers = {"bernoulli": bernoulli, "categorical": categorical, "poisson": poisson}
    if kind != "product":
        part, q, x = makers[kind](tuple(range(3 if kind == "categorical" else 2)))
        return MixtureModel(part.component, K, dtype), MixtureParams(w, q), torch.from_numpy(x)
    # columns interleaved: a block's columns need not be contiguous
    blocks = [gaussian((0, 5)), makers["categorical"]((1, 6, 2)), bernoulli((3, 7)), poisson((4, 8))]
    x = np.zeros((n, 9))
    for part, _, values in blocks:
        x[:, list(part.columns)] = values
    comp = ProductComponent([b[0] for b in blocks], dtype)
    return MixtureModel(comp, K, dtype), MixtureParams(w, comp.make_params(*[b[1] for b in blocks])), torch.from_numpy(x)


def test_a_product_is_the_sum_of_its_blocks():
    """A product's log-densities are its blocks' summed, column by column (independent
    references: each block alone, and scipy's densities for the Gaussian block)."""
    from scipy.stats import norm, poisson

    from bigem.models.mixture import MixtureParams

    rng = np.random.default_rng(7)
    model, p, x = _family_model("product", rng)
    got = model.log_joint(p, x) - torch.log(p.weights)
    parts = model.component.parts
    expected = torch.zeros_like(got)
    for part, q in zip(parts, p.component.parts):
        alone = MixtureModel(part.component, K, torch.float64).log_joint(MixtureParams(p.weights, q), x[:, list(part.columns)])
        expected += alone - torch.log(p.weights)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10)
    g, q = parts[0], p.component.parts[0]
    xg = x[:, list(g.columns)].numpy()
    scipy_g = norm.logpdf(xg[:, None, :], q.means.numpy()[None], np.sqrt(q.covariances.numpy())[None]).sum(-1)
    lam = p.component.parts[3].rates.numpy()
    scipy_p = poisson.logpmf(x[:, [4, 8]].numpy()[:, None, :], lam[None]).sum(-1)
    torch.testing.assert_close(
        MixtureModel(g.component, K, torch.float64).log_joint(MixtureParams(p.weights, q), x[:, [0, 5]])
        - torch.log(p.weights), torch.from_numpy(scipy_g), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(
        MixtureModel(parts[3].component, K, torch.float64).log_joint(MixtureParams(p.weights, p.component.parts[3]),
                                                                     x[:, [4, 8]]) - torch.log(p.weights),
        torch.from_numpy(scipy_p), rtol=1e-12, atol=1e-10)


def test_categorical_codes_minus_one_contribute_nothing():
    """An ignored unknown category (code -1) drops out of the log-density: the same as the row
    without that column, and it adds nothing to the counts."""
    from bigem.models.mixture import MixtureParams

    rng = np.random.default_rng(8)
    comp = CategoricalComponent((3, 4), 1.0, torch.float64)
    probs = torch.cat([torch.from_numpy(rng.dirichlet(np.ones(m), size=K)) for m in (3, 4)], 1)
    w = torch.full((K,), 1 / K, dtype=torch.float64)
    x = torch.tensor([[2.0, -1.0], [-1.0, 3.0]])
    lj = MixtureModel(comp, K, torch.float64).log_joint(MixtureParams(w, comp.make_params(probs)), x)
    torch.testing.assert_close(lj[0], torch.log(w) + torch.log(probs[:, 2]))
    torch.testing.assert_close(lj[1], torch.log(w) + torch.log(probs[:, 3 + 3]))


def test_a_product_is_an_hmm_emission_too():
    """The product component serves an HMM as it serves a mixture: the same log-densities."""
    from bigem.models.mixture import MixtureParams

    rng = np.random.default_rng(9)
    model, p, x = _family_model("product", rng)
    hmm, hp = _hmm(model.component, p.component, rng)
    torch.testing.assert_close(hmm.log_emission(hp, x), model.log_joint(p, x) - torch.log(p.weights), rtol=1e-12,
                               atol=1e-10)
    stats = hmm.e_step(hp, SequenceChunk(x, torch.tensor([40, 50]), 0, 0))
    assert torch.isfinite(stats.loglik)
    new = hmm.m_step(stats, hp).params
    assert isinstance(new.emission, type(p.component))
    MixtureParams(p.weights, new.emission)  # the same parameters type


# ---------------------------------------------------------------------- parameter maps
def _models():
    rng = np.random.default_rng(2)
    out = []
    for ct in NAMES:
        model = gaussian_mixture(K, ct, 1e-6, torch.float64)
        q = _gaussian_params(model.component, rng)
        out.append((f"mixture-{ct}", model, model.make_params(torch.from_numpy(rng.dirichlet(np.ones(K))), q.means, q.covariances)))
    comp = GaussianComponent("tied")
    model, p = _hmm(comp, _gaussian_params(comp, rng), rng)
    out.append(("hmm-gaussian", model, p))
    model = multinomial_mixture(K, 1.0, torch.float64)
    out.append(("mixture-multinomial", model, model.make_params(
        torch.from_numpy(rng.dirichlet(np.ones(K))), torch.from_numpy(rng.dirichlet(np.ones(9), size=K)),
        torch.from_numpy(rng.uniform(5, 50, K)))))
    comp = CategoricalComponent(4)
    probs = torch.from_numpy(rng.dirichlet(np.ones(4), size=K))
    probs[0, 1] = 0.0  # a structural zero stays zero
    probs = probs / probs.sum(1, keepdim=True)
    model, p = _hmm(comp, comp.make_params(probs), rng)
    trans = p.transmat.clone()
    trans[1, 2] = 0.0
    p = HMMParams(p.startprob, trans / trans.sum(1, keepdim=True), p.emission)
    out.append(("hmm-categorical-zeros", model, p))
    comp = PoissonComponent()
    out.append(("hmm-poisson", *_hmm(comp, comp.make_params(torch.from_numpy(rng.uniform(1, 5, (K, D)))), rng)))
    comp = GMMEmission(K, 2, "tied")
    a = rng.normal(size=(K, D, D))
    cov = torch.from_numpy(a @ a.transpose(0, 2, 1) + np.eye(D))
    ep = comp.make_params(torch.from_numpy(rng.dirichlet(np.ones(2), size=K)), torch.from_numpy(rng.normal(0, 3, (K, 2, D))), cov)
    out.append(("hmm-gmm-tied", *_hmm(comp, ep, rng)))
    for kind in FAMILIES:
        model, p, _ = _family_model(kind, rng)
        out.append((f"mixture-{kind}", model, p))
    return out


def _assert_same_params(a, b, rtol=1e-9):
    import dataclasses

    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            _assert_same_params(x, y, rtol)
        elif isinstance(x, torch.Tensor):
            torch.testing.assert_close(y, x, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name, model, params", _models(), ids=[m[0] for m in _models()])
def test_parameters_map_to_tensors_and_back_exactly(name, model, params):
    _assert_same_params(params, model.from_tensors(model.to_tensors(params)), rtol=0)


@pytest.mark.parametrize("name, model, params", _models(), ids=[m[0] for m in _models()])
def test_parameters_map_to_one_unconstrained_vector_and_back(name, model, params):
    vec = model.flatten(params)
    assert vec.ndim == 1 and bool(torch.isfinite(vec).all())
    _assert_same_params(params, model.unflatten(vec, params))
    # any vector is valid parameters: probabilities on the simplex (zeros kept), covariances
    # positive definite (unflatten factors them, which raises otherwise)
    moved = model.unflatten(vec + torch.from_numpy(np.random.default_rng(3).normal(0, 1, vec.shape)), params)
    for t, like in _probabilities(moved, params):
        torch.testing.assert_close(t.sum(-1), torch.ones_like(t.sum(-1)))
        assert bool(((t == 0) == (like == 0)).all())


def _probabilities(p, like):
    if isinstance(p, HMMParams):
        yield p.startprob, like.startprob
        yield p.transmat, like.transmat
        if hasattr(p.emission, "probabilities"):
            yield p.emission.probabilities, like.emission.probabilities
        if hasattr(p.emission, "weights"):
            yield p.emission.weights, like.emission.weights
    else:
        yield p.weights, like.weights
        parts = getattr(p.component, "parts", (p.component,))
        for q, lq in zip(parts, getattr(like.component, "parts", (like.component,))):
            if isinstance(q, CategoricalParams) and q.probabilities.shape[1] == 9:  # the categorical blocks: per column
                for a, b in ((0, 2), (2, 5), (5, 9)):
                    yield q.probabilities[:, a:b], lq.probabilities[:, a:b]
            elif isinstance(q, MultinomialParams):  # one distribution over the words per component
                yield q.probabilities, lq.probabilities


# ---------------------------------------------------------------------- the protocol
def test_one_component_serves_a_mixture_and_an_hmm():
    """The same Gaussian component: its mixture's log-densities and an HMM's emissions agree."""
    rng = np.random.default_rng(4)
    comp = GaussianComponent("full", 0.0, torch.float64)
    q = _gaussian_params(comp, rng)
    x = torch.from_numpy(rng.normal(0, 3, (40, D)))
    mixture = MixtureModel(comp, K, torch.float64)
    w = torch.full((K,), 1 / K, dtype=torch.float64)
    from bigem.models.mixture import MixtureParams

    log_joint = mixture.log_joint(MixtureParams(w, q), x)
    model, p = _hmm(comp, q, rng)
    torch.testing.assert_close(model.log_emission(p, x), log_joint - math.log(1 / K), rtol=1e-12, atol=1e-12)


def test_numpy_scalar_hyper_parameters_survive_a_model_file(tmp_path):
    """np.float32(1e-6) was written as None and refused on load."""
    X = np.random.default_rng(5).normal(size=(200, 2))
    gm = GaussianMixture(2, reg_covar=np.float32(1e-6), tol=np.float64(1e-4), max_iter=np.int64(50), random_state=0).fit(X)
    gm.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    assert back.reg_covar == pytest.approx(1e-6) and back.tol == 1e-4 and back.max_iter == 50
    np.testing.assert_array_equal(back.predict(X), gm.predict(X))


def test_a_model_file_never_holds_where_to_connect(tmp_path):
    X = np.random.default_rng(6).normal(size=(100, 2))
    gm = GaussianMixture(2, client="tcp://10.0.0.1:8786", random_state=0)
    gm.set_params(client=None).fit(X).set_params(client="tcp://10.0.0.1:8786")
    gm.save(tmp_path / "m.bigem")
    assert load(tmp_path / "m.bigem").client is None
