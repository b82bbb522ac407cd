"""What each model is, read once from its formula's structure: the one source of a model's role.

The pooling ladder has four rungs, and every stage (the rules, the variance partition, the
shrinkage check, the figures, the report) asks which fitted model plays which part. The
answer comes from the formula alone, never from the model's name in the config, so a user
may call the models anything:

=====================  ================================================================
role                   structure of the formula (group ``g``, predictor ``x``)
=====================  ================================================================
``no_pooling``         the group is a common (fixed) term: ``0 + g + g:x``
``varying_slopes``     the predictor varies by the group: ``(x|g)``, ``(0 + x|g)``
``varying_intercepts`` the intercept varies by the group (and the predictor does not)
``complete_pooling``   the group appears nowhere
=====================  ================================================================

Covariates, site-level predictors and further grouping factors (``(1|g:class)``,
``(1|rater)``) do not change a model's role; they are listed in `ModelRoles`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import formulae
import numpy as np

ROLES = ("complete_pooling", "no_pooling", "varying_intercepts", "varying_slopes")
LABELS = {
    "complete_pooling": "complete pooling",
    "no_pooling": "no pooling",
    "varying_intercepts": "partial pooling (varying intercepts)",
    "varying_slopes": "partial pooling (varying slopes)",
}
PARTIAL = ("varying_intercepts", "varying_slopes")
# Functions a formula may call besides formulae's own (C, I, center, scale, ...): log(Uppm), np.log(x).
FORMULA_NAMESPACE = {
    "np": np,
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
}


@dataclass(frozen=True)
class ModelRoles:
    """The structure of one model formula, relative to the dataset's group and predictor columns.

    Attributes
    ----------
    role : str
        One of `ROLES`.
    common : tuple of str
        Names of the common (population-level) terms, as Bambi names them, without ``Intercept``.
    intercept : bool
        Whether the formula has a common intercept.
    group_terms : dict
        Grouping factor (e.g. ``"site"``, ``"site:class"``) -> the expressions that vary by it
        (``"1"`` for the intercept, else the term name).
    covariates : tuple of str
        Common terms other than the predictor and the group: covariates, site-level predictors,
        interactions.
    """

    role: str
    common: tuple[str, ...] = ()
    intercept: bool = True
    group_terms: dict = field(default_factory=dict)
    covariates: tuple[str, ...] = ()

    @property
    def factors(self) -> tuple[str, ...]:
        """Every grouping factor with varying effects, in formula order."""
        return tuple(self.group_terms)

    @property
    def partial(self) -> bool:
        return self.role in PARTIAL


def _variables(term) -> set[str]:
    return {c.name for c in getattr(term, "components", []) if type(c).__name__ == "Variable"}


def _rhs(formula: str) -> str:
    return formula.split("~", 1)[1] if "~" in formula else formula


def model_roles(formula: str, group: str, predictor: str | None = None) -> ModelRoles:
    """The role and structure of ``formula`` for a dataset with these group and predictor columns.

    Parameters
    ----------
    formula : str
        The model formula as fitted (placeholders filled in).
    group : str
        The dataset's site column.
    predictor : str, optional
        The dataset's predictor column (None for summary data without one).

    Returns
    -------
    ModelRoles
    """
    description = formulae.model_description(_rhs(formula))
    common, intercept, group_terms = [], False, {}
    group_is_common = False
    for term in description.terms:
        kind = type(term).__name__
        if kind == "Intercept":
            intercept = True
        elif kind == "GroupSpecificTerm":
            factor = ":".join(c.name for c in term.factor.components)
            expr = "1" if type(term.expr).__name__ == "Intercept" else term.expr.name
            group_terms.setdefault(factor, []).append(expr)
        else:
            common.append(term.name)
            group_is_common |= group in _variables(term)
    main = group_terms.get(group, [])
    if group_is_common:
        role = "no_pooling"
    elif predictor is not None and predictor in main:
        role = "varying_slopes"
    elif main:
        role = "varying_intercepts"
    else:
        role = "complete_pooling"
    covariates = tuple(t for t in common if t != predictor and group not in t.split(":"))
    return ModelRoles(
        role=role,
        common=tuple(common),
        intercept=intercept,
        group_terms={k: tuple(v) for k, v in group_terms.items()},
        covariates=covariates,
    )


def first_of_each_role(formulas: dict, group: str, predictor: str | None = None) -> dict[str, str]:
    """Role -> the first model (in the given order) that plays it; a role no model plays is absent."""
    out: dict[str, str] = {}
    for name, formula in formulas.items():
        out.setdefault(model_roles(formula, group, predictor).role, name)
    return out


def main_model(formulas: dict, group: str, predictor: str | None = None) -> str:
    """The model the figures and the headline lead with: the richest partial-pooling model there is."""
    by_role = first_of_each_role(formulas, group, predictor)
    for role in ("varying_slopes", "varying_intercepts", "no_pooling", "complete_pooling"):
        if role in by_role:
            return by_role[role]
    raise ValueError("no models")


def stages(formulas: dict, group: str, predictor: str | None = None) -> dict[str, str]:
    """Which analysis stages apply to these models, and why not where they do not.

    Returns
    -------
    dict
        Stage name (``variance``, ``shrinkage``) -> ``""`` when it applies, else the reason.
    """
    by_role = first_of_each_role(formulas, group, predictor)
    has_partial = any(role in by_role for role in PARTIAL)
    out = {"variance": "" if has_partial else f"no model has effects varying by {group!r}"}
    if "varying_intercepts" not in by_role or "no_pooling" not in by_role:
        missing = [LABELS[r] for r in ("no_pooling", "varying_intercepts") if r not in by_role]
        out["shrinkage"] = f"needs a {' and a '.join(missing)} model"
    else:
        out["shrinkage"] = ""
    return out
