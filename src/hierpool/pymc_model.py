"""The PyMC model of a built Bambi model, written by hierpool: for what Bambi's own model cannot do.

Three things need it:

* correlated varying effects (``correlated: true``, `hierpool.correlated`), which Bambi has no
  term for (bambinos/bambi issue 702);
* the Gaussian likelihood from per-site sufficient statistics (`hierpool.sufficient`), which
  makes a gradient cost O(sites) instead of O(rows) on large data;
* sampling with nutpie while writing its progress to the job's log (`hierpool.progress`), which
  Bambi's ``fit`` does not: with nutpie every fit and refit samples this model.

Bambi stays the place where the formula, the design matrices and every prior come from:
`build_pymc` reads a built ``bambi.Model`` (its terms' data, group indices, coordinates and
priors) and writes a new ``pm.Model`` with the same variable names and dimensions (plus
``<factor>_corr`` and ``<factor>_cov`` for a correlated block). Everything downstream that
reads a fit (Bambi's own predictions, hierpool's chunked log-likelihood, effects, variance)
works on its posterior unchanged. Nothing of Bambi is modified. `tests/test_pymc_model.py`
checks that the log-likelihood equals Bambi's at the same parameter values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bambi as bmb
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from bambi.backend.pymc import PyMCModel
from bambi.model_components import ConstantComponent

from hierpool import correlated, sufficient
from hierpool.errors import ModelError
from hierpool.likelihood import LIKELIHOODS, sufficient_statistics_apply
from hierpool.priors import pymc_distribution, pymc_variable, sd_prior

OBS = "__obs__"
CV_WEIGHTS = "hierpool_cv_weights"
CV_STATISTICS = {  # SiteStatistics field -> data variable of a shared sufficient-statistics model
    "aa": "hierpool_cv_aa",
    "ay": "hierpool_cv_ay",
    "yy": "hierpool_cv_yy",
    "n_rows": "hierpool_cv_n_rows",
}
INTERNAL_SUFFIXES = ("__centred", "__raw", "__chol", "__offset", "__effects", "_offset")


@dataclass
class LinearPredictor:
    """``eta = offset + x @ beta + sum over blocks of (coefs[index] * z).sum(1)``, kept in its parts.

    ``common`` is ``(beta, x)`` with the (centred) intercept as a column of ones; every entry of
    ``varying`` is ``(coefs (J, k), z (N, k), index (N,), factor, J)``.
    """

    offset: np.ndarray | float = 0.0
    common: tuple | None = None
    varying: list = field(default_factory=list)

    def rows(self):
        eta = self.offset
        if self.common is not None:
            beta, x = self.common
            eta = eta + pt.dot(x, beta)
        for coefs, z, index, _, _ in self.varying:
            eta = eta + (coefs[index] * z).sum(axis=1)
        return eta


def _independent_term(term, noncentered: bool):
    """One varying term as Bambi builds it: Normal(0, sigma) per level, sigma with its own prior."""
    dims = list(term.coords)
    sigma = pymc_variable(f"{term.name}_sigma", sd_prior(term))[0]
    if noncentered:
        offset = pm.Normal(f"{term.name}_offset", 0.0, 1.0, dims=dims)
        coef = pm.Deterministic(term.name, offset * sigma, dims=dims)
    else:
        coef = pm.Normal(term.name, 0.0, sigma, dims=dims)
    z = np.asarray(term.predictor, dtype=float)
    z = z.reshape(len(z), -1)
    return (coef if z.shape[1] > 1 else coef[:, None]), z


def _n_levels(term) -> int:
    return len(next(iter(term.coords.values())))


def linear_predictor(
    model_pm, model: bmb.Model, component, eta: float, noncentered: bool, correlate: bool
) -> LinearPredictor:
    """Intercept, common terms, offsets and varying terms of one distributional component."""
    out = LinearPredictor()
    common = list(component.common_terms.values())
    intercept = component.intercept_term
    betas, columns = [], []
    if common:
        for term in common:
            model_pm.add_coords(dict(term.coords))
        beta = pt.concatenate(
            [pymc_variable(t.name, t.prior, dims=list(t.coords) or None) for t in common]
        )
        x = np.column_stack([np.asarray(t.data, dtype=float) for t in common])
    if intercept is not None:
        if common and model.center_predictors:  # as Bambi: the intercept at the predictors' means
            x_mean = x.mean(0)
            shifted = pymc_variable(f"{intercept.name}__centred", intercept.prior)
            pm.Deterministic(intercept.name, shifted[0] - pt.dot(x_mean, beta))
            x = x - x_mean
        else:
            shifted = pymc_variable(f"{intercept.name}__raw", intercept.prior)
            pm.Deterministic(intercept.name, shifted[0])
        betas.append(shifted)
        columns.append(np.ones((len(model.data), 1)))
    if common:
        betas.append(beta)
        columns.append(x)
    if betas:
        out.common = (pt.concatenate(betas), np.column_stack(columns))
    for offset in component.offset_terms.values():
        out.offset = out.offset + np.asarray(offset.data, dtype=float).squeeze()
    groups = component.group_specific_terms
    blocks = correlated.correlated_blocks(model) if correlate else {}
    for factor, names in blocks.items():
        terms = [groups[n] for n in names]
        for term in terms:
            model_pm.add_coords(dict(term.coords))
        coefs, z = correlated.correlated_block(model_pm, factor, terms, eta, noncentered)
        out.varying.append((coefs, z, terms[0].group_index, factor, _n_levels(terms[0])))
    in_blocks = {name for names in blocks.values() for name in names}
    for name, term in groups.items():
        if name not in in_blocks:
            model_pm.add_coords(dict(term.coords))
            coefs, z = _independent_term(term, noncentered)
            out.varying.append(
                (coefs, z, term.group_index, correlated.factor_of(name), _n_levels(term))
            )
    return out


def _sufficient_likelihood(
    linear: LinearPredictor,
    observed: np.ndarray,
    sigma,
    n_rows: int,
    kept: np.ndarray,
    shared: bool = False,
):
    """``pm.Potential`` of the ``kept`` rows' Normal log-likelihood from the per-site statistics.

    ``shared``: the statistics as data variables (`CV_STATISTICS`), so that one compiled model
    serves every refit of a cross-validation (`refit_data` gives each refit's values).
    """
    index = linear.varying[0][2] if linear.varying else np.zeros(n_rows, dtype=int)
    n_sites = linear.varying[0][4] if linear.varying else 1
    offset = np.broadcast_to(np.asarray(linear.offset, dtype=float), (n_rows,))
    parts, theta = [], []
    if linear.common is not None:
        beta, x = linear.common
        parts.append(x)
        theta.append(pt.broadcast_to(beta[None, :], (n_sites, x.shape[1])))
    for coefs, z, _, _, _ in linear.varying:
        parts.append(z)
        theta.append(coefs)
    y = observed - offset
    design = sufficient.rows_of(parts)
    stats = sufficient.site_statistics(design[kept], y[kept], index[kept], n_sites)
    if shared:
        pm.modelcontext(None).hierpool_sufficient_rows = (design, y, np.asarray(index), n_sites)
        values = statistics_data(stats)
        stats = sufficient.SiteStatistics(
            **{field: pm.Data(name, values[name]) for field, name in CV_STATISTICS.items()}
        )
    theta = pt.concatenate(theta, axis=1)
    return pm.Potential("log_likelihood__", sufficient.gaussian_log_likelihood(theta, sigma, stats))


def statistics_data(stats: sufficient.SiteStatistics) -> dict:
    """The data variables (`CV_STATISTICS`) of a shared sufficient-statistics model, from ``stats``."""
    return {name: np.asarray(getattr(stats, f), dtype=float) for f, name in CV_STATISTICS.items()}


def refit_data(model_pm: pm.Model, held_out) -> dict:
    """The data of one cross-validation refit of a ``weighted=True`` model: rows ``held_out`` left out.

    For the rows likelihood the weights (`CV_WEIGHTS`: 0 for a held-out row, else 1); for the
    sufficient-statistics one the statistics of the kept rows (`CV_STATISTICS`). Pass them to
    nutpie's ``compiled.with_data(**...)`` or PyMC's ``model_pm.set_data``.
    """
    held_out = np.asarray(held_out, dtype=int)
    rows = getattr(model_pm, "hierpool_sufficient_rows", None)
    if rows is None:
        weights = np.ones(len(model_pm.coords[OBS]))
        weights[held_out] = 0.0
        return {CV_WEIGHTS: weights}
    design, y, index, n_sites = rows
    kept = np.setdiff1d(np.arange(len(y)), held_out)
    stats = sufficient.site_statistics(design[kept], y[kept], index[kept], n_sites)
    return statistics_data(stats)


def build_pymc(
    model: bmb.Model,
    correlate: bool = False,
    eta: float = correlated.DEFAULT_ETA,
    noncentered: bool = True,
    likelihood: str = "rows",
    held_out=None,
    weighted: bool = False,
) -> pm.Model:
    """The PyMC model of a built Bambi model, with correlated effects and/or a sufficient-statistics likelihood.

    Parameters
    ----------
    model : bambi.Model
        Built from the formula with the priors to use (``hierpool.models.build_model``).
    correlate : bool
        Correlate the terms varying by each grouping factor (`hierpool.correlated`).
    eta : float
        LKJ shape of each correlation matrix.
    noncentered : bool
        Non-centred (default) or centred varying effects.
    likelihood : str
        ``rows`` (the response as an observed variable, one Normal, Bernoulli... per row) or
        ``sufficient`` (Gaussian only, `hierpool.sufficient`: a ``pm.Potential``, so such a
        model has no prior predictive; build a ``rows`` one for that).
    held_out : array of int, optional
        Rows left out of the likelihood (cross-validation, `hierpool.crossval`): the design, the
        group levels and the priors stay those of all rows, so a site whose every row is held out
        keeps its effect, drawn from the population distribution.
    weighted : bool
        One compiled model serves every refit of a cross-validation, each with its own data
        (`refit_data`, nutpie's ``with_data``): the rows likelihood as a ``pm.Potential``
        weighted by the data variable `CV_WEIGHTS` (1 keeps a row, 0 leaves it out), the
        sufficient statistics as the data variables `CV_STATISTICS`.

    Returns
    -------
    pymc.Model
        Variables named as Bambi names them (``Intercept``, ``floor``, ``1|county``,
        ``1|county_sigma``, ``sigma``, the response) plus ``<factor>_corr`` and ``<factor>_cov``
        for a correlated block. Internal variables end in `INTERNAL_SUFFIXES`.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not {likelihood!r}")
    if likelihood == "sufficient" and (why := sufficient_statistics_apply(model)):
        raise ModelError(f"the sufficient-statistics likelihood does not apply: {why}")
    if not eta > 0:
        raise ModelError(f"lkj_eta must be > 0, got {eta}")
    family = model.family
    parent = family.likelihood.parent
    response = model.response_component.term
    observed = np.squeeze(np.asarray(response.data))
    n_rows = observed.shape[0]
    kept = np.setdiff1d(np.arange(n_rows), np.asarray(held_out if held_out is not None else []))
    whole = kept.size == n_rows
    with pm.Model(coords={OBS: kept}) as model_pm:
        kwargs = {"observed": observed if whole else observed[kept], "dims": (OBS,)}
        for name, component in model.components.items():
            if isinstance(component, ConstantComponent):
                prior = component.prior
                kwargs[name] = (
                    prior
                    if isinstance(prior, (int, float))
                    else pymc_distribution(prior)(component.alias or name, **prior.args)
                )
                continue
            linear = linear_predictor(
                model_pm, model, component, eta, noncentered, correlate and name == parent
            )
            if likelihood == "sufficient":
                parent_linear = linear
                continue
            rows = linear.rows()
            if not whole:
                rows = rows[kept] if getattr(rows, "ndim", np.ndim(rows)) else rows
            kwargs[name] = PyMCModel.INVLINKS[family.link[name].name](rows)
        if likelihood == "sufficient":
            _sufficient_likelihood(
                parent_linear, observed.astype(float), kwargs["sigma"], n_rows, kept, weighted
            )
            return model_pm
        if hasattr(family, "transform_backend_kwargs"):
            kwargs = family.transform_backend_kwargs(kwargs)
        if weighted:
            _weighted_likelihood(family, kwargs, n_rows)
        else:
            pymc_distribution(family.likelihood)(response.alias or response.name, **kwargs)
    return model_pm


def _weighted_likelihood(family, kwargs: dict, n_rows: int):
    """``pm.Potential``: the sum over rows of weight × log-likelihood (weights in `CV_WEIGHTS`)."""
    kwargs = dict(kwargs)
    observed = kwargs.pop("observed")
    kwargs.pop("dims", None)
    weights = pm.Data(CV_WEIGHTS, np.ones(n_rows), dims=(OBS,))
    distribution = pymc_distribution(family.likelihood).dist(**kwargs)
    logp = pm.logp(distribution, observed)
    return pm.Potential("cv_log_likelihood__", pt.sum(pt.switch(weights > 0, weights * logp, 0.0)))


def public_variables(dataset):
    """``dataset`` without the sampler's internal variables (`INTERNAL_SUFFIXES`)."""
    return dataset.drop_vars([v for v in dataset.data_vars if str(v).endswith(INTERNAL_SUFFIXES)])


def settings(model: bmb.Model) -> dict | None:
    """How hierpool writes this model's PyMC model, or None when Bambi's own is sampled.

    ``{"correlated": [factors], "eta": float, "likelihood": "rows" | "sufficient",
    "held_out": rows or None, "weighted": bool}``, set by `hierpool.models.build_model` (``correlated: true``),
    `hierpool.fit.choose_likelihood` (`hierpool.likelihood`) and `hierpool.crossval` (rows left out of a refit).
    """
    return getattr(model, "hierpool_pymc", None)


def correlated_settings(model: bmb.Model) -> dict | None:
    """``{"factors", "eta"}`` of a correlated model, else None (what the fit records)."""
    plan = settings(model)
    if not plan or not plan["correlated"]:
        return None
    return {"factors": list(plan["correlated"]), "eta": plan["eta"]}


def plan(model: bmb.Model, **changes) -> dict:
    """Ask for hierpool's PyMC model (or change how it is built); returns the settings."""
    current = settings(model) or {
        "correlated": [],
        "eta": correlated.DEFAULT_ETA,
        "likelihood": "rows",
        "held_out": None,
        "weighted": False,
    }
    model.hierpool_pymc = {**current, **changes}
    model.hierpool_pymc_cache = {}
    return model.hierpool_pymc


def pymc_model(model: bmb.Model, likelihood: str | None = None) -> pm.Model:
    """hierpool's PyMC model of a built Bambi model (`settings`), built once per likelihood and cached."""
    plan_ = settings(model)
    likelihood = likelihood or plan_["likelihood"]
    cache = getattr(model, "hierpool_pymc_cache", None)
    if cache is None:
        cache = model.hierpool_pymc_cache = {}
    if likelihood not in cache:
        cache[likelihood] = build_pymc(
            model,
            correlate=bool(plan_["correlated"]),
            eta=plan_["eta"],
            noncentered=bool(model.noncentered),
            likelihood=likelihood,
            held_out=plan_.get("held_out"),
            weighted=bool(plan_.get("weighted")),
        )
    return cache[likelihood]
