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
from bambi.terms import OffsetTerm

from hierpool.errors import ModelError
from hierpool.roles import FORMULA_NAMESPACE

try:  # formulae's tokenizer raises its own error type for unknown characters
    from formulae.scanner import ScanError as FORMULA_SCAN_ERROR
except ImportError:  # pragma: no cover - older/newer formulae
    FORMULA_SCAN_ERROR = formulae.parser.ParseError

_TOKEN = re.compile(r"(?<![A-Za-z0-9_.])[A-Za-z_.][A-Za-z0-9_.]*")
_FORMULA_WORDS = {
    "C",
    "I",
    "np",
    "log",
    "log10",
    "exp",
    "sqrt",
    "center",
    "scale",
    "standardize",
    "poly",
    "bs",
    "p",
    "offset",
}

"""Functions a formula may call besides Bambi's own (``C``, ``p``, ``offset``, ``scale`` …): ``log(x)``,
``log10``, ``exp``, ``sqrt`` and anything in NumPy as ``np.log(x)``; passed to Bambi as ``extra_namespace``."""

LINK_SCALE_FAMILIES = ("bernoulli", "binomial", "poisson", "negativebinomial")
"""Families whose site-SD priors are set on the link scale (logit or log), not in units of sd(y)."""
OUTCOME_SCALE_FAMILIES = ("gaussian", "t")


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


def formula_columns(formula: str) -> set[str]:
    """Names in a formula that look like data columns (a cheap pre-check before formulae parses it).

    Function names (any name followed by ``(``, e.g. ``log``, ``np.log``, ``C``), keyword
    arguments (``degree=2``), quoted strings and numbers are not columns; a name in
    backticks is one column, spaces and all.
    """
    quoted = set(re.findall(r"`([^`]+)`", formula))
    text = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", " ", formula)
    names = set()
    for match in _TOKEN.finditer(text):
        tok, rest = match.group(), text[match.end() :].lstrip()
        if rest.startswith("(") or (rest.startswith("=") and not rest.startswith("==")):
            continue
        if tok not in _FORMULA_WORDS and not tok.replace(".", "").isdigit():
            names.add(tok)
    return names | quoted


def check_formula_columns(formula: str, data: pd.DataFrame, model: str) -> None:
    if "~" not in formula:
        raise ModelError(
            f"model {model!r}: formula {formula!r} has no '~' (write it as 'outcome ~ terms')."
        )
    unknown = sorted(name for name in formula_columns(formula) if name not in data.columns)
    if unknown:
        raise ModelError(
            f"model {model!r}: formula {formula!r} names column(s) {unknown} that are not in the cleaned data "
            f"(columns: {[c for c in data.columns if c != 'source_row']}). Fix the formula, or keep the column "
            "with cleaning.covariates."
        )


def build_model(
    spec: dict, data: pd.DataFrame, site_sd_prior_scale: float | None = None
) -> bmb.Model:
    """Build (not fit) the Bambi model described by ``spec``.

    Parameters
    ----------
    spec : dict
        ``{name, formula, family, priors, noncentered, known_se}``. ``noncentered`` (default
        true, Bambi's default) chooses the parametrisation of varying effects: non-centred
        suits small sites, centred suits sites with many observations each. ``known_se``
        names a column holding each row's known standard error (summary data, meta-analysis);
        see below.
    data : pandas.DataFrame
        The cleaned data.
    site_sd_prior_scale : float, optional
        When set, the SD of every varying effect that has no configured prior gets a
        weakly informative prior (see `site_sd_priors`): ``HalfNormal(scale * sd(y) / sd(x))``
        for gaussian and t, ``HalfNormal(scale / sd(x))`` on the link scale for bernoulli,
        binomial, poisson and negativebinomial; other families keep Bambi's default.

    Returns
    -------
    bambi.Model
        Built, with ``hierpool_notes`` (list of str) and ``hierpool_known_se`` (the
        ``known_se`` column or None; read it with `known_se_column`).

    Notes
    -----
    Formulas may call ``log``, ``log10``, ``exp``, ``sqrt`` and ``np.<function>``
    (:data:`FORMULA_NAMESPACE`), e.g. ``log_radon ~ floor + log(Uppm) + (1|county)``.

    With ``known_se = "se"`` (gaussian family only) the likelihood is
    ``y_i ~ Normal(mu_i, se_i)`` with ``se_i`` fixed from the data: the model is Bambi's
    distributional formula ``y ~ ...`` plus ``sigma ~ 0 + offset(log(se))`` (sigma's link is
    log, so sigma_i = se_i exactly, and it is re-read from the data for predictions on new
    rows). Such a posterior has **no** ``sigma`` variable: it holds the terms of the
    formula only (e.g. ``Intercept``, ``1|school``, ``1|school_sigma`` for
    ``estimate ~ 1 + (1|school)``); a prior on ``sigma`` is an error.
    """
    name = spec.get("name", "?")
    formula = spec["formula"]
    family = spec.get("family", "gaussian")
    known_se = spec.get("known_se")
    check_formula_columns(formula, data, name)
    priors = {
        term: parse_prior(p, f"model {name!r}: priors.{term}")
        for term, p in (spec.get("priors") or {}).items()
    }
    if known_se is not None:
        _check_known_se(known_se, data, family, priors, name)
    if site_sd_prior_scale is not None and family in OUTCOME_SCALE_FAMILIES + LINK_SCALE_FAMILIES:
        varying = [t for t in _varying_terms(formula) if t not in priors]
        priors.update(
            site_sd_priors(
                varying, data, formula.split("~")[0].strip(), site_sd_prior_scale, family
            )
        )
    bambi_formula = (
        bmb.Formula(formula, f"sigma ~ 0 + offset(log({known_se}))")
        if known_se is not None
        else formula
    )
    noncentered = bool(spec.get("noncentered", True))

    def make(all_priors):
        model = bmb.Model(
            bambi_formula,
            data,
            family=family,
            priors=all_priors or None,
            noncentered=noncentered,
            extra_namespace=FORMULA_NAMESPACE,
        )
        model.build()
        return model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = make(priors)
    except ModelError:
        raise
    except (
        ValueError,
        KeyError,
        TypeError,
        NameError,
        NotImplementedError,
        formulae.parser.ParseError,
        FORMULA_SCAN_ERROR,
    ) as err:
        raise ModelError(
            f"model {name!r}: Bambi rejected formula {formula!r} (family {family}): {err}"
        ) from err
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
            model = make({**priors, **repaired})
    model.hierpool_notes = notes
    model.hierpool_known_se = known_se
    return model


def known_se_column(model: bmb.Model) -> str | None:
    """The column of known standard errors a model built by `build_model` uses, or None.

    When it is set, the posterior has no residual ``sigma``: sigma_i is that column.
    """
    return getattr(model, "hierpool_known_se", None)


def _check_known_se(column: str, data: pd.DataFrame, family: str, priors: dict, name: str) -> None:
    where = f"model {name!r}: known_se {column!r}"
    if family != "gaussian":
        raise ModelError(
            f"{where}: known standard errors need the gaussian family (y ~ Normal(mu, se)), not {family!r}."
        )
    if not isinstance(column, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
        raise ModelError(
            f"{where}: the column name must be a plain identifier (letters, digits, _) to be used in a formula."
        )
    if column not in data.columns:
        raise ModelError(
            f"{where} is not a column of the cleaned data (columns: {[c for c in data.columns if c != 'source_row']})."
        )
    values = pd.to_numeric(data[column], errors="coerce")
    bad = data.index[
        ~(np.isfinite(values.to_numpy(dtype=float)) & (values.to_numpy(dtype=float) > 0))
    ]
    if len(bad):
        raise ModelError(
            f"{where}: standard errors must be finite and > 0; {len(bad)} row(s) are not (first: {data.loc[bad[0], column]!r})."
        )
    if "sigma" in priors:
        raise ModelError(
            f"{where}: sigma is fixed to the known standard errors, so it cannot have a prior; remove priors.sigma."
        )


def _varying_terms(formula: str) -> list[str]:
    """Names Bambi gives the varying effects of a formula: ``(x|g)`` -> ``1|g``, ``x|g``.

    Handles several grouping factors (``(1|school) + (1|school:class)``, crossed
    ``(1|a) + (1|b)``), nesting ``(1|a/b)`` -> ``1|a``, ``1|a:b``, function calls inside
    (``(log(x)|g)``) and any left-hand side (``p(y, n) ~ ...``).
    """
    rhs = formula.split("~", 1)[1] if "~" in formula else formula
    names = []
    for inner in _parenthesised(rhs):
        expr, bar, group = _split_top_level_bar(inner)
        if not bar:
            continue
        parts = [p.strip() for p in re.split(r"(?<![\^*])\+", expr)]
        compact = expr.replace(" ", "")
        groups = _nested_groups(group.strip())
        for g in groups:
            if "0" not in parts and "-1" not in compact:
                names.append(f"1|{g}")
            names += [
                f"{p}|{g}" for p in parts if p not in ("1", "0", "", "-1") and not p.startswith("-")
            ]
    return list(dict.fromkeys(names))


def _parenthesised(text: str) -> list[str]:
    """Contents of every top-level bracket pair in ``text``, with nested brackets kept inside."""
    out, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            if depth == 0:
                start = i + 1
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(text[start:i])
    return out


def _split_top_level_bar(text: str) -> tuple[str, str, str]:
    depth = 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            return text[:i], "|", text[i + 1 :]
    return text, "", ""


def _nested_groups(group: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a:b``, ``a:b:c`` (formulae's nesting); anything else as written."""
    if "/" not in group:
        return [group]
    levels = [g.strip() for g in group.split("/")]
    return [":".join(levels[: i + 1]) for i in range(len(levels))]


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
    if family in OUTCOME_SCALE_FAMILIES:
        if outcome not in data or not pd.api.types.is_numeric_dtype(data[outcome]):
            return {}
        sd_y = float(data[outcome].std())
    elif family in LINK_SCALE_FAMILIES:
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
                if term_name == model.response_component.term.name or isinstance(term, OffsetTerm):
                    continue  # an offset is data, not a parameter (e.g. the known SEs)
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
