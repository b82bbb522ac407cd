"""Build Bambi models from the config: formula, family and priors, checked before any sampling.

A prior in the config is a mapping with the distribution's name under `dist` and its
parameters beside it; a parameter may itself be a prior (a hyperprior), e.g.

    "1|site": {dist: Normal, mu: 0, sigma: {dist: HalfNormal, sigma: 1}}
"""

from __future__ import annotations

import re
import warnings

import bambi as bmb
import formulae
import numpy as np
import pandas as pd

from hierpool.errors import ModelError

try:  # formulae's tokenizer raises its own error type for unknown characters
    from formulae.scanner import ScanError as FORMULA_SCAN_ERROR
except ImportError:  # pragma: no cover - older/newer formulae
    FORMULA_SCAN_ERROR = formulae.parser.ParseError

_TOKEN = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_FORMULA_WORDS = {"C", "I", "np", "log", "exp", "center", "scale", "standardize", "poly", "bs", "p"}


def parse_prior(spec, where: str = "prior") -> bmb.Prior:
    """Turn a config prior mapping (possibly nested) into a ``bmb.Prior``."""
    if not isinstance(spec, dict) or "dist" not in spec:
        raise ModelError(f"{where}: a prior needs a `dist` key (e.g. {{dist: Normal, mu: 0, sigma: 1}}), got {spec!r}")
    args = {}
    for key, value in spec.items():
        if key == "dist":
            continue
        args[key] = parse_prior(value, f"{where}.{key}") if isinstance(value, dict) else _number(value)
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


def formula_columns(formula: str) -> set[str]:
    """Names in a formula that look like data columns (a cheap pre-check before formulae parses it)."""
    return {tok for tok in _TOKEN.findall(formula) if tok not in _FORMULA_WORDS and not tok.replace(".", "").isdigit()}


def check_formula_columns(formula: str, data: pd.DataFrame, model: str) -> None:
    if "~" not in formula:
        raise ModelError(f"model {model!r}: formula {formula!r} has no '~' (write it as 'outcome ~ terms').")
    unknown = sorted(name for name in formula_columns(formula) if name not in data.columns)
    if unknown:
        raise ModelError(
            f"model {model!r}: formula {formula!r} names column(s) {unknown} that are not in the cleaned data "
            f"(columns: {[c for c in data.columns if c != 'source_row']}). Fix the formula, or keep the column "
            "with cleaning.covariates."
        )


def build_model(spec: dict, data: pd.DataFrame, site_sd_prior_scale: float | None = None) -> bmb.Model:
    """Build (not fit) the Bambi model described by ``spec`` = {name, formula, family, priors, noncentered}.

    ``noncentered`` (default true, Bambi's default) chooses the parametrisation of varying
    effects: non-centred suits small sites, centred suits sites with many observations each.

    With ``site_sd_prior_scale`` set, the SD of every varying effect that has no configured
    prior gets ``HalfNormal(scale * sd(y) / sd(x))`` (see `site_sd_priors`).
    """
    name = spec.get("name", "?")
    formula = spec["formula"]
    check_formula_columns(formula, data, name)
    priors = {term: parse_prior(p, f"model {name!r}: priors.{term}") for term, p in (spec.get("priors") or {}).items()}
    if site_sd_prior_scale is not None and spec.get("family", "gaussian") in ("gaussian", "t"):
        varying = [t for t in _varying_terms(formula) if t not in priors]
        priors.update(site_sd_priors(varying, data, formula.split("~")[0].strip(), site_sd_prior_scale))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = bmb.Model(formula, data, family=spec.get("family", "gaussian"), priors=priors or None,
                              noncentered=bool(spec.get("noncentered", True)))
            model.build()
    except ModelError:
        raise
    except (ValueError, KeyError, TypeError, NotImplementedError, formulae.parser.ParseError, FORMULA_SCAN_ERROR) as err:
        raise ModelError(f"model {name!r}: Bambi rejected formula {formula!r} (family {spec.get('family', 'gaussian')}): {err}") from err
    unknown_priors = set(priors) - set(model_terms(model))
    if unknown_priors:
        raise ModelError(
            f"model {name!r}: priors given for {sorted(unknown_priors)}, which are not terms of {formula!r} "
            f"(terms: {model_terms(model)})."
        )
    repaired, notes = repair_infinite_priors(model, set(priors))
    if repaired:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = bmb.Model(formula, data, family=spec.get("family", "gaussian"), priors={**priors, **repaired},
                              noncentered=bool(spec.get("noncentered", True)))
            model.build()
    model.hierpool_notes = notes
    return model


def _varying_terms(formula: str) -> list[str]:
    """Names Bambi gives the varying effects of a formula: ``(x|g)`` -> ``1|g``, ``x|g``."""
    names = []
    for inner in re.findall(r"\(([^()]*)\|([^()]*)\)", formula):
        expr, group = inner[0].strip(), inner[1].strip()
        parts = [p.strip() for p in expr.split("+")]
        if "0" not in parts and "-1" not in expr.replace(" ", ""):
            names.append(f"1|{group}")
        names += [f"{p}|{group}" for p in parts if p not in ("1", "0", "")]
    return list(dict.fromkeys(names))


def site_sd_priors(terms: list[str], data: pd.DataFrame, outcome: str, scale: float) -> dict:
    """Weakly informative priors on the between-site SDs: ``HalfNormal(scale * sd(y) / sd(x))``.

    Bambi's default (2.5 x that) lets the sampler wander into implausibly large site SDs;
    with few sites the posterior of the SD is mostly prior, and that wide prior causes
    divergences (measured in docs/performance.md). One SD of the outcome per unit of the
    predictor is still wide: it allows sites to differ by the whole spread of the data.
    """
    if outcome not in data or not pd.api.types.is_numeric_dtype(data[outcome]):
        return {}
    sd_y = float(data[outcome].std())
    out = {}
    for term in terms:
        expr = term.split("|")[0]
        if expr == "1":
            sd_x = 1.0
        elif expr in data and pd.api.types.is_numeric_dtype(data[expr]) and data[expr].std() > 0:
            sd_x = float(data[expr].std())
        else:
            continue
        out[term] = bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=scale * sd_y / sd_x))
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
    return [str(levels[i]) if i < len(levels) else str(i) for i in index] if len(levels) else [str(i) for i in index]


def model_terms(model: bmb.Model) -> list[str]:
    names = []
    for comp_name, component in model.components.items():
        terms = getattr(component, "terms", None)
        if terms:
            names += list(terms)
        else:
            names.append(comp_name)
    return names


def priors_used(model: bmb.Model) -> dict:
    """Every parameter's prior as Bambi will use it (after its automatic scaling), as plain dicts."""
    out = {}
    for comp_name, component in model.components.items():
        terms = getattr(component, "terms", None)
        if terms:
            for term_name, term in terms.items():
                if term_name == model.response_component.term.name:
                    continue
                out[term_name] = prior_to_dict(term.prior)
        elif getattr(component, "prior", None) is not None:
            out[comp_name] = prior_to_dict(component.prior)
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
