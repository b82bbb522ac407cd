"""Priors: read from the config, the between-site SD defaults, repairs of Bambi's automatic priors, reports.

A prior in the config is a mapping with the distribution's name under `dist` and its
parameters beside it; a parameter may itself be a prior (a hyperprior), e.g.

    "1|site": {dist: Normal, mu: 0, sigma: {dist: HalfNormal, sigma: 1}}
"""

from __future__ import annotations

import bambi as bmb
import numpy as np
import pandas as pd
from bambi.terms import OffsetTerm

from hierpool.errors import ModelError
from hierpool.families import DEFAULT_LINK


def parse_prior(spec, where: str = "prior") -> bmb.Prior:
    """Turn a config prior mapping (possibly nested) into a ``bmb.Prior``."""
    if not isinstance(spec, dict) or "dist" not in spec:
        raise ModelError(
            f"{where}: a prior needs a `dist` key (e.g. {{dist: Normal, mu: 0, sigma: 1}}), got {spec!r}"
        )
    args = {}
    for key, value in spec.items():
        if key == "dist":
            continue
        args[key] = (
            parse_prior(value, f"{where}.{key}") if isinstance(value, dict) else _number(value)
        )
    return bmb.Prior(str(spec["dist"]), **args)


def _number(value):
    """A prior parameter given as text (``--config`` passes nested values as strings) as a float."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def prior_to_dict(prior) -> dict | float | str | list:
    """Inverse of `parse_prior`, for writing out the priors actually used."""
    if isinstance(prior, bmb.Prior):
        out = {"dist": prior.name}
        for key, value in prior.args.items():
            out[key] = prior_to_dict(value)
        return out
    if np.ndim(prior) > 0:
        values = np.asarray(prior, dtype=float).ravel()
        return values[0].item() if np.allclose(values, values[0]) else values.tolist()
    try:
        return float(prior)
    except (TypeError, ValueError):
        return str(prior)


def site_sd_priors(
    terms: list[str], data: pd.DataFrame, outcome: str, scale: float, family: str = "gaussian"
) -> dict:
    """Weakly informative priors on the between-site SDs of varying effects ``terms``.

    gaussian, t: ``HalfNormal(scale * sd(y) / sd(x))``. Bambi's default (2.5 x that) lets
    the sampler wander into implausibly large site SDs; with few sites the posterior of the
    SD is mostly prior, and that wide prior causes divergences (measured in
    docs/performance.md). One SD of the outcome per unit of the predictor is still wide: it
    allows sites to differ by the whole spread of the data.

    bernoulli, binomial, poisson, negativebinomial: ``HalfNormal(scale * 1 / sd(x))`` on the
    link scale (logit or log). sd(y) means nothing there; instead, a site SD of 1 per unit
    of the predictor (intercept: sd_x = 1) already lets sites' odds or rates differ by a
    factor of about e^2 ≈ 7 between typical sites (±1 SD), and larger differences are rare
    in practice, while Bambi's default is much wider and, with few sites, mostly prior.

    The intercept term (``1|g``) uses sd_x = 1; a slope on a column that is not numeric or
    has no variation keeps Bambi's default. Other families: no priors (Bambi's default).
    """
    if DEFAULT_LINK.get(family) == "identity":  # gaussian, t: in units of sd(y)
        if outcome not in data or not pd.api.types.is_numeric_dtype(data[outcome]):
            return {}
        sd_y = float(data[outcome].std())
    elif family in DEFAULT_LINK:  # logit or log scale
        sd_y = 1.0
    else:
        return {}
    out = {}
    for term in terms:
        expr = term.split("|")[0]
        if expr == "1":
            sd_x = 1.0
        elif expr in data and pd.api.types.is_numeric_dtype(data[expr]) and data[expr].std() > 0:
            sd_x = float(data[expr].std())
        else:
            continue
        out[term] = bmb.Prior(
            "Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=scale * sd_y / sd_x)
        )
    return out


def repair_infinite_priors(model: bmb.Model, user_terms: set[str]) -> tuple[dict, list[str]]:
    """Replace Bambi's automatic priors that came out infinite, and say where.

    Bambi scales a coefficient's prior by 1/sd(column). A column with no variation (e.g.
    the slope of a site whose predictor is constant, in the no-pooling model) gets an
    infinite SD, which breaks sampling. Such entries get the widest finite SD of the
    same term: the coefficient stays identified by its prior only, as no pooling implies.
    """
    repaired, notes = {}, []
    for component in model.components.values():
        for term_name, term in (getattr(component, "terms", None) or {}).items():
            prior = getattr(term, "prior", None)
            if term_name in user_terms or not isinstance(prior, bmb.Prior):
                continue
            args, changed = {}, []
            for key, value in prior.args.items():
                arr = np.asarray(value, dtype=float) if not isinstance(value, bmb.Prior) else None
                if arr is not None and arr.size and not np.isfinite(arr).all():
                    finite = arr[np.isfinite(arr)]
                    fill = float(finite.max()) if finite.size else 10.0
                    arr = np.where(np.isfinite(arr), arr, fill)
                    bad = np.flatnonzero(~np.isfinite(np.asarray(value, dtype=float)))
                    levels = _term_levels(term, bad)
                    changed.append(f"{key} of {levels} set to {fill:.3g}")
                    args[key] = arr if arr.ndim else float(arr)
                else:
                    args[key] = value
            if changed:
                repaired[term_name] = bmb.Prior(prior.name, **args)
                notes.append(
                    f"term {term_name!r}: Bambi's automatic prior was infinite for columns with no variation "
                    f"(no data to estimate them); {'; '.join(changed)}."
                )
    return repaired, notes


def _term_levels(term, index: np.ndarray) -> list[str]:
    levels = getattr(getattr(term, "term", None), "levels", None) or []
    return (
        [str(levels[i]) if i < len(levels) else str(i) for i in index]
        if len(levels)
        else [str(i) for i in index]
    )


def priors_used(model: bmb.Model) -> dict:
    """Every parameter's prior as Bambi will use it (after its automatic scaling), as plain dicts.

    A correlated model (`hierpool.correlated`) adds ``<factor>_corr: LKJCorr(eta)``.
    """
    out = {}
    for comp_name, component in model.components.items():
        terms = getattr(component, "terms", None)
        if terms:
            for term_name, term in terms.items():
                if term_name == model.response_component.term.name or isinstance(term, OffsetTerm):
                    continue  # an offset is data, not a parameter (e.g. the known SEs)
                out[term_name] = prior_to_dict(term.prior)
        elif getattr(component, "prior", None) is not None:
            out[comp_name] = prior_to_dict(component.prior)
    plan = getattr(model, "hierpool_pymc", None) or {}  # hierpool.pymc_model.settings
    for factor in plan.get("correlated", []):
        out[f"{factor}_corr"] = {"dist": "LKJCorr", "eta": float(plan["eta"])}
    return out


def describe_prior(prior) -> str:
    """One-line text for a prior dict, e.g. ``Normal(mu=0, sigma=HalfNormal(sigma=1))``."""
    if isinstance(prior, dict):
        args = ", ".join(f"{k}={describe_prior(v)}" for k, v in prior.items() if k != "dist")
        return f"{prior['dist']}({args})"
    if isinstance(prior, float):
        return f"{prior:.4g}"
    if isinstance(prior, list):
        return f"[{min(prior):.3g} … {max(prior):.3g}] (per column)"
    return str(prior)


def pymc_distribution(prior):
    """The PyMC distribution class of a Bambi prior (or likelihood): ``Prior("Normal")`` -> ``pm.Normal``."""
    import pymc as pm

    return prior.dist if getattr(prior, "dist", None) is not None else getattr(pm, prior.name)


def pymc_variable(name: str, prior, dims=None):
    """A PyMC variable (in the current model) for a Bambi prior without hyperpriors; a number stays a number.

    Without ``dims`` the variable is returned with shape (1,), as Bambi's common terms are.
    """
    import pytensor.tensor as pt

    if not isinstance(prior, bmb.Prior):
        return prior
    if any(isinstance(v, bmb.Prior) for v in prior.args.values()):
        raise ModelError(f"{name}: a hyperprior is only supported on the SD of a varying effect")
    rv = pymc_distribution(prior)(name, **prior.args, dims=dims)
    return rv if dims else pt.atleast_1d(rv)


def sd_prior(term) -> bmb.Prior:
    """The prior on the SD of a varying term whose prior is Normal(0, sigma) with a prior on sigma."""
    prior = term.prior
    if not (
        isinstance(prior, bmb.Prior)
        and prior.name == "Normal"
        and isinstance(prior.args.get("sigma"), bmb.Prior)
        and np.all(np.asarray(prior.args.get("mu", 0)) == 0)
    ):
        raise ModelError(
            f"term {term.name!r}: hierpool's PyMC model needs the prior Normal(0, sigma) with a prior on "
            f"sigma for a varying effect (Bambi's default), not {prior}."
        )
    return prior.args["sigma"]
