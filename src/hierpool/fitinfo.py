"""What every stage needs to know about a fit before it reads its draws.

The fit job stamps the model as fitted (formula, family, link, known-SE column, correlated
factors) into the posterior's and prior's attributes (`stamp`), so a fit file describes
itself; `model_info`, `structure` and `role` read it back, and a model's role comes from its
formula, never from its name in the config. `names` gives Bambi's variable names for a
dataset's columns, and `PredictorScale` the cleaning step's transform of the predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import xarray as xr

from hierpool import roles
from hierpool.families import DEFAULT_LINK


@dataclass(frozen=True)
class PredictorScale:
    """How the cleaning step transformed the predictor: model x = (x_orig - center) / scale."""

    center: float = 0.0
    scale: float = 1.0

    @classmethod
    def from_summary(cls, summary: dict) -> PredictorScale:
        """From ``cleaning_summary.json`` (the whole file or its ``predictor`` entry)."""
        info = summary.get("predictor", summary)
        return cls(center=float(info.get("center", 0.0)), scale=float(info.get("scale", 1.0)))

    def to_model(self, x):
        return (np.asarray(x, dtype=float) - self.center) / self.scale

    def to_original(self, x):
        return np.asarray(x, dtype=float) * self.scale + self.center


def names(columns: dict) -> dict[str, str]:
    """Bambi's variable names for this dataset's columns."""
    g, p = columns["group"], columns.get("predictor") or ""
    return {
        "intercept": "Intercept",
        "slope": p,
        "sigma": "sigma",
        "sd_intercept": f"1|{g}_sigma",
        "sd_slope": f"{p}|{g}_sigma",
        "site_intercept": f"1|{g}",
        "site_slope": f"{p}|{g}",
        "np_intercept": g,
        "np_slope": f"{g}:{p}",
    }


# What the fit job stores in the posterior's (and prior's) attributes: the model as fitted.
ATTRS = {
    "formula": "hierpool_formula",
    "family": "hierpool_family",
    "link": "hierpool_link",
    "known_se": "hierpool_known_se",
    "correlated": "hierpool_correlated",
    "lkj_eta": "hierpool_lkj_eta",
}


def stamp(
    idata: az.InferenceData,
    formula: str,
    family: str = "gaussian",
    link: str | None = None,
    known_se: str | None = None,
    correlated: dict | None = None,
) -> az.InferenceData:
    """Record the fitted formula, family and link in the posterior's and prior's attributes (in place).

    Every later stage reads the model's structure from there, so a fit file is self-describing.
    """
    values = {
        "formula": formula,
        "family": family,
        "link": link or DEFAULT_LINK.get(family, "identity"),
        "known_se": known_se or "",
        "correlated": ",".join(correlated["factors"]) if correlated else "",
        "lkj_eta": float(correlated["eta"]) if correlated else 0.0,
    }
    for group in ("posterior", "prior"):
        if group in idata.groups():
            idata[group].attrs.update({ATTRS[k]: v for k, v in values.items()})
    return idata


def model_info(obj) -> dict:
    """The fitted model's formula, family, link, known-SE column and correlated factors (with their LKJ eta), from `stamp`."""
    attrs = posterior_dataset(obj).attrs
    if ATTRS["formula"] not in attrs:
        raise KeyError(
            "this fit does not record its formula (hierpool_formula): refit it with this version of hierpool"
        )
    family = attrs.get(ATTRS["family"], "gaussian")
    return {
        "formula": attrs[ATTRS["formula"]],
        "family": family,
        "link": attrs.get(ATTRS["link"]) or DEFAULT_LINK.get(family, "identity"),
        "known_se": attrs.get(ATTRS["known_se"]) or None,
        "correlated": [f for f in str(attrs.get(ATTRS["correlated"], "")).split(",") if f],
        "lkj_eta": float(attrs.get(ATTRS["lkj_eta"], 0.0)) or None,
    }


def structure(obj, columns: dict) -> roles.ModelRoles:
    """The model's roles and terms, read from its formula (see hierpool.roles)."""
    return roles.model_roles(model_info(obj)["formula"], columns["group"], columns.get("predictor"))


def role(obj, columns: dict) -> str:
    """Which rung of the pooling ladder a fit is: one of `roles.ROLES`, from its formula."""
    return structure(obj, columns).role


def posterior_dataset(obj) -> xr.Dataset:
    """The posterior group of an InferenceData; a Dataset is returned as it is."""
    if isinstance(obj, az.InferenceData):
        return obj.posterior
    return obj
