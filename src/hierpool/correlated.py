"""Correlated varying effects, as lme4's and brms's ``(x|g)``: the PyMC model built from Bambi's design.

Bambi's ``(x|g)`` gives the site intercepts and slopes independent normal distributions (it
has no correlation term, bambinos/bambi issue 702). Here the same formula gets, for every
grouping factor with two or more varying terms, site effects drawn from one multivariate
normal,

    (b_0j, b_1j, ...) ~ MvNormal(0, Sigma),  Sigma = diag(sd) R diag(sd),
    R ~ LKJ(eta),  sd_k ~ the SD prior the independent model gives term k,

with the Cholesky factor of Sigma from ``pm.LKJCholeskyCov`` and, by default, the
non-centred form ``b_j = L z_j`` with ``z_j ~ Normal(0, I)``.

Bambi stays the place where the formula, the design matrices and every prior come from:
`build_pymc` reads a built ``bambi.Model`` (its terms' data, group indices, coordinates and
priors) and writes a new ``pm.Model`` with the same variable names and dimensions, plus
``<factor>_corr`` and ``<factor>_cov`` (one value per pair of terms). Everything downstream that reads a fit
(Bambi's own predictions, hierpool's log-likelihood, effects and variance) works on it
unchanged. Nothing of Bambi is modified.
"""

from __future__ import annotations

import itertools

import bambi as bmb
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from bambi.backend.pymc import PyMCModel
from bambi.model_components import ConstantComponent
from bambi.priors import Prior

from hierpool.errors import ModelError

DEFAULT_ETA = 2.0
"""LKJ shape: 1 is uniform over correlation matrices (brms's default); 2 keeps the correlation away
from ±1 when few sites inform it, where lme4 reports singular fits and NUTS diverges."""

OBS = "__obs__"


def factor_of(term_name: str) -> str:
    """The grouping factor of a Bambi group-specific term name: ``floor|county`` -> ``county``."""
    return term_name.split("|", 1)[1]


def expression_of(term_name: str) -> str:
    """The varying expression: ``1|county`` -> ``Intercept``, ``floor|county`` -> ``floor``."""
    expr = term_name.split("|", 1)[0]
    return "Intercept" if expr == "1" else expr


def correlated_blocks(model: bmb.Model) -> dict[str, list[str]]:
    """Grouping factor -> the names of its varying terms, for every factor with two or more."""
    parent = model.family.likelihood.parent
    by_factor: dict[str, list[str]] = {}
    for name in model.components[parent].group_specific_terms:
        by_factor.setdefault(factor_of(name), []).append(name)
    return {factor: names for factor, names in by_factor.items() if len(names) > 1}


def pair_labels(term_names: list[str]) -> list[str]:
    """One label per pair of terms, in the order of `corr_pairs`: ``"Intercept, floor"``."""
    return [
        f"{expression_of(a)}, {expression_of(b)}" for a, b in itertools.combinations(term_names, 2)
    ]


def corr_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the strict upper triangle of a k × k matrix (pairs in row order)."""
    return np.triu_indices(k, 1)


def covariance_from_cholesky(chol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariance ``L Lᵀ``, SDs and correlation matrix from (stacks of) lower Cholesky factors ``L``.

    Parameters
    ----------
    chol : numpy.ndarray
        Shape (..., k, k), lower triangular with a positive diagonal.

    Returns
    -------
    (cov, sd, corr) : tuple of numpy.ndarray
        Shapes (..., k, k), (..., k) and (..., k, k).
    """
    cov = chol @ np.swapaxes(chol, -1, -2)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    corr = cov / (sd[..., :, None] * sd[..., None, :])
    return cov, sd, corr


def _dist(prior: Prior):
    return prior.dist if getattr(prior, "dist", None) is not None else getattr(pm, prior.name)


def _rv(name: str, prior, dims=None):
    """A PyMC variable for a Bambi prior (numbers stay numbers; nested priors are not expected here)."""
    if not isinstance(prior, Prior):
        return prior
    args = {k: v for k, v in prior.args.items()}
    if any(isinstance(v, Prior) for v in args.values()):
        raise ModelError(
            f"{name}: nested priors on common terms are not supported in correlated models"
        )
    rv = _dist(prior)(name, **args, dims=dims)
    return rv if dims else pt.atleast_1d(rv)


def _sd_prior(term) -> Prior:
    prior = term.prior
    if not (
        isinstance(prior, Prior)
        and prior.name == "Normal"
        and isinstance(prior.args.get("sigma"), Prior)
        and np.all(np.asarray(prior.args.get("mu", 0)) == 0)
    ):
        raise ModelError(
            f"term {term.name!r}: a correlated varying effect needs the prior Normal(0, sigma) with a prior on "
            f"sigma (Bambi's default), not {prior}."
        )
    return prior.args["sigma"]


def _block_sd_dist(terms: list, factor: str):
    """One distribution of the SDs of a block: the terms' SD priors, which must share a family."""
    priors = [_sd_prior(t) for t in terms]
    names = {p.name for p in priors}
    if len(names) > 1 or any(set(p.args) != set(priors[0].args) for p in priors):
        raise ModelError(
            f"correlated effects by {factor!r}: the SD priors of {[t.name for t in terms]} are "
            f"{[str(p) for p in priors]}; give them one distribution (e.g. HalfNormal with a sigma each)."
        )
    args = {k: np.array([float(np.squeeze(p.args[k])) for p in priors]) for k in priors[0].args}
    return _dist(priors[0]).dist(**args)


def _one_column(term, factor: str) -> np.ndarray:
    predictor = np.asarray(term.predictor, dtype=float)
    if predictor.ndim > 1 and predictor.shape[1] != 1:
        raise ModelError(
            f"correlated effects by {factor!r}: term {term.name!r} has {predictor.shape[1]} columns (a categorical "
            "slope); correlated blocks take the intercept and numeric slopes. Code the levels as 0/1 columns."
        )
    return predictor.reshape(-1)


def _correlated_block(model_pm, factor: str, terms: list, eta: float, noncentered: bool):
    """Site effects of one factor's terms from MvNormal(0, L Lᵀ); returns their contribution to eta."""
    columns = [_one_column(term, factor) for term in terms]
    levels = list(next(iter(terms[0].coords.values())))
    for term in terms:
        model_pm.add_coords(dict(term.coords))
    k = len(terms)
    pair_dim = f"{factor}__corr_pair"
    model_pm.add_coords({pair_dim: pair_labels([t.name for t in terms])})
    chol, corr, sds = pm.LKJCholeskyCov(
        f"{factor}__chol",
        n=k,
        eta=eta,
        sd_dist=_block_sd_dist(terms, factor),
        compute_corr=True,
        store_in_trace=False,
    )
    if noncentered:
        z = pm.Normal(f"{factor}__offset", 0.0, 1.0, shape=(len(levels), k))
        effects = pt.dot(z, chol.T)
    else:
        effects = pm.MvNormal(
            f"{factor}__effects", mu=np.zeros(k), chol=chol, shape=(len(levels), k)
        )
    rows, cols = corr_pairs(k)
    pm.Deterministic(f"{factor}_corr", corr[rows, cols], dims=pair_dim)
    pm.Deterministic(f"{factor}_cov", corr[rows, cols] * sds[rows] * sds[cols], dims=pair_dim)
    contribution = 0.0
    for j, term in enumerate(terms):
        label = term.name
        pm.Deterministic(f"{label}_sigma", sds[j])
        coef = pm.Deterministic(label, effects[:, j], dims=list(term.coords))
        contribution = contribution + coef[term.group_index] * columns[j]
    return contribution


def _independent_term(term, noncentered: bool):
    """One varying term as Bambi builds it: Normal(0, sigma) per level, sigma with its own prior."""
    sd_prior = _sd_prior(term)
    dims = list(term.coords)
    sigma = _rv(f"{term.name}_sigma", sd_prior)[0]
    if noncentered:
        offset = pm.Normal(f"{term.name}_offset", 0.0, 1.0, dims=dims)
        coef = pm.Deterministic(term.name, offset * sigma, dims=dims)
    else:
        coef = pm.Normal(term.name, 0.0, sigma, dims=dims)
    predictor = np.asarray(term.predictor, dtype=float)
    if predictor.ndim > 1:
        return (coef[term.group_index] * predictor).sum(axis=1)
    return coef[term.group_index] * predictor


def _linear_predictor(
    model_pm, model: bmb.Model, component, eta: float, noncentered: bool, correlated: bool
):
    """Intercept + common terms + offsets + varying terms of one distributional component."""
    output = 0.0
    common = list(component.common_terms.values())
    intercept = component.intercept_term
    if common:
        for term in common:
            model_pm.add_coords(dict(term.coords))
        betas = pt.concatenate([_rv(t.name, t.prior, dims=list(t.coords) or None) for t in common])
        x = np.column_stack([np.asarray(t.data, dtype=float) for t in common])
    if intercept is not None:
        centre = common and model.center_predictors
        if centre:  # as Bambi: sample the intercept at the predictors' means, report it at 0
            x_mean = x.mean(0)
            shifted = _rv(f"{intercept.name}__centred", intercept.prior)[0]
            pm.Deterministic(intercept.name, shifted - pt.dot(x_mean, betas))
            output = output + shifted
            x = x - x_mean
        else:
            output = output + pm.Deterministic(
                intercept.name, _rv(f"{intercept.name}__raw", intercept.prior)[0]
            )
    if common:
        output = output + pt.dot(x, betas)
    for offset in component.offset_terms.values():
        output = output + np.asarray(offset.data, dtype=float).squeeze()
    groups = component.group_specific_terms
    blocks = correlated_blocks(model) if correlated else {}
    in_blocks = {name for names in blocks.values() for name in names}
    for factor, names in blocks.items():
        output = output + _correlated_block(
            model_pm, factor, [groups[n] for n in names], eta, noncentered
        )
    for name, term in groups.items():
        if name not in in_blocks:
            model_pm.add_coords(dict(term.coords))
            output = output + _independent_term(term, noncentered)
    return output


def build_pymc(model: bmb.Model, eta: float = DEFAULT_ETA, noncentered: bool = True) -> pm.Model:
    """The PyMC model of a built Bambi model with correlated varying effects.

    Parameters
    ----------
    model : bambi.Model
        Built from the formula with the priors to use (``hierpool.models.build_model``); its
        ``(x|g)`` terms are the independent ones, whose SD priors the correlated block keeps.
    eta : float
        LKJ shape of each factor's correlation matrix (:data:`DEFAULT_ETA`).
    noncentered : bool
        ``b_j = L z_j`` (default) or ``b_j ~ MvNormal(0, L Lᵀ)``.

    Returns
    -------
    pymc.Model
        Variables named as Bambi names them (``Intercept``, ``floor``, ``1|county``,
        ``1|county_sigma``, ``sigma``, the response) plus ``<factor>_corr`` and ``<factor>_cov``
        (correlation and covariance of each pair of terms) with dimension ``<factor>__corr_pair``. Internal variables end in ``__centred``, ``__raw``,
        ``__chol``, ``__offset`` or ``__effects`` (`INTERNAL_SUFFIXES`).
    """
    if not eta > 0:
        raise ModelError(f"lkj_eta must be > 0, got {eta}")
    family = model.family
    parent = family.likelihood.parent
    response = model.response_component.term
    observed = np.squeeze(np.asarray(response.data))
    with pm.Model(coords={OBS: np.arange(observed.shape[0])}) as model_pm:
        kwargs = {"observed": observed, "dims": (OBS,)}
        for name, component in model.components.items():
            if isinstance(component, ConstantComponent):
                prior = component.prior
                kwargs[name] = (
                    prior
                    if isinstance(prior, (int, float))
                    else _dist(prior)(component.alias or name, **prior.args)
                )
                continue
            linear = _linear_predictor(model_pm, model, component, eta, noncentered, name == parent)
            kwargs[name] = PyMCModel.INVLINKS[family.link[name].name](linear)
        if hasattr(family, "transform_backend_kwargs"):
            kwargs = family.transform_backend_kwargs(kwargs)
        _dist(family.likelihood)(response.alias or response.name, **kwargs)
    return model_pm


INTERNAL_SUFFIXES = ("__centred", "__raw", "__chol", "__offset", "__effects", "_offset")


def public_variables(dataset):
    """``dataset`` without the sampler's internal variables (Bambi keeps ``_offset``; these are not Bambi's)."""
    return dataset.drop_vars([v for v in dataset.data_vars if str(v).endswith(INTERNAL_SUFFIXES)])


def settings(model: bmb.Model) -> dict | None:
    """``{"eta": ..}`` for a model `hierpool.models.build_model` built with ``correlated: true``, else None."""
    return getattr(model, "hierpool_correlated", None)


def pymc_model(model: bmb.Model) -> pm.Model:
    """The correlated PyMC model of a built Bambi model (built once, then cached on it)."""
    if getattr(model, "hierpool_pymc", None) is None:
        model.hierpool_pymc = build_pymc(model, settings(model)["eta"], bool(model.noncentered))
    return model.hierpool_pymc
