"""Build Bambi models from the config: formula, family and priors (hierpool.priors), checked before any sampling."""

from __future__ import annotations

import re
import warnings

import bambi as bmb
import formulae
import numpy as np
import pandas as pd

from hierpool import correlated, groupcodes, parametrisation, pymc_model
from hierpool.errors import ModelError
from hierpool.families import DEFAULT_LINK
from hierpool.priors import parse_prior, repair_infinite_priors, site_sd_priors
from hierpool.roles import FORMULA_NAMESPACE, model_roles

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
        ``{name, formula, family, priors, noncentered, known_se, correlated, lkj_eta}``. ``noncentered`` (default
        ``"auto"``) chooses the parametrisation of varying effects: non-centred (true, Bambi's
        default) suits small sites, centred (false) suits sites with many observations each;
        ``auto`` picks from the data (`hierpool.parametrisation`) and says why in the notes. ``known_se``
        names a column holding each row's known standard error (summary data, meta-analysis);
        see below. ``correlated`` (default false) makes the terms varying by one grouping
        factor correlated, with an ``LKJ(lkj_eta)`` prior on their correlation
        (`hierpool.correlated`); the model is then sampled from `hierpool.pymc_model`.
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
    if site_sd_prior_scale is not None and family in DEFAULT_LINK:
        varying = [t for t in varying_terms(formula) if t not in priors]
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
    parametrisation_setting = spec.get("noncentered", "auto")
    noncentered = True if parametrisation_setting == "auto" else bool(parametrisation_setting)

    def make(all_priors):
        with groupcodes.compact_group_factors():  # no rows × sites matrix (1M × 10k: 74 GiB)
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
    rebuild = bool(repaired)
    if parametrisation_setting == "auto":
        noncentered, why = parametrisation.choose(model)
        if why:
            notes.append(f"parametrisation: {why}")
        rebuild = rebuild or not noncentered
    if rebuild:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make({**priors, **repaired})
    model.hierpool_notes = notes
    model.hierpool_known_se = known_se
    if spec.get("correlated"):
        _make_correlated(model, spec, name)
    return model


def _make_correlated(model: bmb.Model, spec: dict, name: str) -> None:
    """Mark ``model`` for correlated varying effects (`hierpool.correlated`) and build its PyMC model now."""
    blocks = correlated.correlated_blocks(model)
    if not blocks:
        raise ModelError(
            f"model {name!r}: correlated: true needs at least two terms varying by one grouping factor, such as "
            f"(x|g) (an intercept and a slope); {spec['formula']!r} has none. Remove `correlated` or add a slope."
        )
    pymc_model.plan(
        model, correlated=list(blocks), eta=float(spec.get("lkj_eta", correlated.DEFAULT_ETA))
    )
    pymc_model.pymc_model(model)  # fails here, before sampling, on what the builder cannot take


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


def model_terms(model: bmb.Model) -> list[str]:
    names = []
    for comp_name, component in model.components.items():
        terms = getattr(component, "terms", None)
        if terms:
            names += list(terms)
        else:
            names.append(comp_name)
    return names


def varying_terms(formula: str) -> list[str]:
    """Bambi's names of a formula's varying effects: ``(x|g)`` -> ``1|g``, ``x|g``; ``(1|a/b)`` -> ``1|a``, ``1|a:b``."""
    struct = model_roles(formula, group="")
    return [f"{expr}|{factor}" for factor, exprs in struct.group_terms.items() for expr in exprs]
