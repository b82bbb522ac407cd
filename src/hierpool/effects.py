"""Site lines and population parameters from any of the four model families, as posterior draws.

Bambi names parameters after the dataset's columns (group ``site``, predictor ``stress``):

=====================  ==========================================  ===========================
model family           site intercepts                             site slopes
=====================  ==========================================  ===========================
complete pooling       ``Intercept`` (one for all)                 ``stress`` (one for all)
no pooling             ``site`` (dim ``site_dim``)                 ``site:stress``
varying intercepts     ``Intercept`` + ``1|site``                  ``stress`` (one for all)
varying slopes         ``Intercept`` + ``1|site``                  ``stress`` + ``stress|site``
=====================  ==========================================  ===========================

Every function here works from the posterior arrays (no model rebuild, no sampling) and
returns xarray draws with dims ``(chain, draw[, site])``, so later stages never deal with
Bambi's dimension names. The family is read from which variables exist, not from the
model's name in the config, so a renamed model still works.

Scales. The model sees ``x = (x_orig - center) / scale``. An *intercept* here is always
the line's value at model ``x = 0``, i.e. at the predictor's centre (its grand mean when
the data were centred, 0 when not). A *slope* is returned per unit of the ORIGINAL
predictor (model slope / scale), so slopes compare directly with the raw data and truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")
FAMILIES = ("complete_pooling", "no_pooling", "varying_intercepts", "varying_slopes")


@dataclass(frozen=True)
class PredictorScale:
    """How the cleaning step transformed the predictor: model x = (x_orig - center) / scale."""

    center: float = 0.0
    scale: float = 1.0

    @classmethod
    def from_summary(cls, summary: dict) -> "PredictorScale":
        """From ``cleaning_summary.json`` (the whole file or its ``predictor`` entry)."""
        info = summary.get("predictor", summary)
        return cls(center=float(info.get("center", 0.0)), scale=float(info.get("scale", 1.0)))

    def to_model(self, x):
        return (np.asarray(x, dtype=float) - self.center) / self.scale

    def to_original(self, x):
        return np.asarray(x, dtype=float) * self.scale + self.center


def names(columns: dict) -> dict[str, str]:
    """Bambi's variable names for this dataset's columns."""
    g, p = columns["group"], columns["predictor"]
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


def family(idata_or_posterior, columns: dict) -> str:
    """Which of the four model families a fit is, judged by its variables."""
    post = _posterior(idata_or_posterior)
    n = names(columns)
    if n["np_intercept"] in post:
        return "no_pooling"
    if n["site_slope"] in post:
        return "varying_slopes"
    if n["site_intercept"] in post:
        return "varying_intercepts"
    per_site = [v for v in post.data_vars if set(post[v].dims) - set(SAMPLE_DIMS)]
    if n["intercept"] in post and not per_site:
        return "complete_pooling"
    if per_site:
        raise KeyError(
            f"variables {per_site} vary by site but none is named for group {columns['group']!r} and predictor "
            f"{columns['predictor']!r}: are these the dataset's columns?"
        )
    raise KeyError(f"cannot tell the model family from variables {list(post.data_vars)} (columns {columns})")


def _posterior(obj) -> xr.Dataset:
    if isinstance(obj, az.InferenceData):
        return obj.posterior
    return obj


def _clean_label(label, columns: dict) -> str:
    """Site label as in the data: drop any ``:predictor`` or ``group[...]`` decoration Bambi may add."""
    text = str(label)
    g, p = columns["group"], columns["predictor"]
    for suffix in (f":{p}",):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    if text.startswith(f"{g}[") and text.endswith("]"):
        text = text[len(g) + 1 : -1]
    return text


def site_draws(post: xr.Dataset, var: str, columns: dict) -> xr.DataArray:
    """A per-site variable with its site dim renamed to ``site`` and plain string labels."""
    da = post[var]
    extra = [d for d in da.dims if d not in SAMPLE_DIMS]
    if len(extra) != 1:
        raise ValueError(f"{var!r} should have exactly one dim besides chain/draw, has {da.dims}")
    da = da.rename({extra[0]: "site"})
    return da.assign_coords(site=[_clean_label(s, columns) for s in da["site"].values])


def scalar_draws(post: xr.Dataset, var: str) -> xr.DataArray:
    da = post[var]
    if set(da.dims) != set(SAMPLE_DIMS):
        raise ValueError(f"{var!r} should have dims (chain, draw), has {da.dims}")
    return da


def site_lines(idata, columns: dict, scale: PredictorScale = PredictorScale(), sites=None) -> tuple[xr.DataArray, xr.DataArray]:
    """Per-site (intercept at the centre, slope per original unit) draws, dims (chain, draw, site).

    Complete pooling has one line for all sites; pass ``sites`` to broadcast it over them.
    """
    post = _posterior(idata)
    n = names(columns)
    kind = family(post, columns)
    if kind == "no_pooling":
        intercept = site_draws(post, n["np_intercept"], columns)
        slope = site_draws(post, n["np_slope"], columns) if n["np_slope"] in post else xr.zeros_like(intercept)
        slope = slope.reindex(site=intercept["site"])
    else:
        intercept = scalar_draws(post, n["intercept"])
        slope = scalar_draws(post, n["slope"]) if n["slope"] in post else xr.zeros_like(intercept)
        if n["site_intercept"] in post:
            intercept = intercept + site_draws(post, n["site_intercept"], columns)
        if n["site_slope"] in post:
            slope = slope + site_draws(post, n["site_slope"], columns)
    intercept, slope = xr.broadcast(intercept, slope)
    if sites is not None:
        labels = [str(s) for s in sites]
        if "site" not in intercept.dims:
            intercept = intercept.expand_dims(site=labels)
            slope = slope.expand_dims(site=labels)
        missing = sorted(set(labels) - set(intercept["site"].values.tolist()))
        if missing:
            raise KeyError(f"sites {missing[:5]} are not in the posterior (has {intercept['site'].values[:5].tolist()} …)")
        intercept, slope = intercept.sel(site=labels), slope.sel(site=labels)
    order = [d for d in (*SAMPLE_DIMS, "site") if d in intercept.dims]
    return intercept.transpose(*order), (slope / scale.scale).transpose(*order)


def population_line(idata, columns: dict, scale: PredictorScale = PredictorScale()) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Population-level (intercept at the centre, slope per original unit); None for no pooling (there is none)."""
    post = _posterior(idata)
    n = names(columns)
    if family(post, columns) == "no_pooling":
        return None
    intercept = scalar_draws(post, n["intercept"])
    slope = scalar_draws(post, n["slope"]) if n["slope"] in post else xr.zeros_like(intercept)
    return intercept, slope / scale.scale


def site_sds(idata, columns: dict, scale: PredictorScale = PredictorScale()) -> tuple[xr.DataArray, xr.DataArray] | None:
    """SD of the site intercepts (at the centre) and of the site slopes (per original unit); None without site effects.

    A varying-intercepts model has a slope SD of exactly 0.
    """
    post = _posterior(idata)
    n = names(columns)
    if n["sd_intercept"] not in post:
        return None
    sd0 = scalar_draws(post, n["sd_intercept"])
    sd1 = scalar_draws(post, n["sd_slope"]) / scale.scale if n["sd_slope"] in post else xr.zeros_like(sd0)
    return sd0, sd1


def sigma(idata, columns: dict | None = None) -> xr.DataArray:
    return scalar_draws(_posterior(idata), "sigma")


def mu_draws(idata, data: pd.DataFrame, columns: dict, include_site: bool = True) -> np.ndarray:
    """Linear predictor per draw and observation, shape (chain, draw, obs), from the posterior arrays.

    ``data`` is the cleaned data the model was fitted to (predictor on the model scale).
    ``include_site=False`` gives the population-level prediction (site effects set to 0),
    which does not exist for no pooling (ValueError).
    """
    post = _posterior(idata)
    x = data[columns["predictor"]].to_numpy(dtype=float)
    if include_site:
        intercept, slope = site_lines(post, columns)  # slope per original unit = model slope when scale is 1
        if "site" in intercept.dims:
            index = pd.Index(intercept["site"].values.tolist()).get_indexer(data[columns["group"]].astype(str))
            if (index < 0).any():
                raise KeyError("some sites of the data are not in the posterior")
            a = intercept.values[..., index]
            b = slope.values[..., index]
            return a + b * x
    else:
        line = population_line(post, columns)
        if line is None:
            raise ValueError("no pooling has no population-level line: a marginal prediction is undefined")
        intercept, slope = line
    return intercept.values[..., None] + slope.values[..., None] * x


def summarise(draws, prob: float = 0.95, prefix: str = "") -> dict[str, float]:
    """Mean, median, SD and highest-density interval of scalar draws (any shape; all are pooled)."""
    values = np.asarray(draws, dtype=float).ravel()
    values = values[np.isfinite(values)]
    low, high = az.hdi(values, hdi_prob=prob)
    return {
        f"{prefix}mean": float(values.mean()),
        f"{prefix}median": float(np.median(values)),
        f"{prefix}sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        f"{prefix}hdi_low": float(low),
        f"{prefix}hdi_high": float(high),
    }


def hdi_along(draws: xr.DataArray, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """HDI of draws (chain, draw, *rest) for every entry of the remaining dims: (low, high) arrays."""
    bounds = az.hdi(draws.rename("v").to_dataset(), hdi_prob=prob)["v"]
    rest = [d for d in draws.dims if d not in SAMPLE_DIMS]
    bounds = bounds.transpose(*rest, "hdi")
    return bounds.sel(hdi="lower").values, bounds.sel(hdi="higher").values


def site_summary(draws: xr.DataArray, prob: float = 0.95) -> pd.DataFrame:
    """Per-site mean, SD and HDI of draws with dims (chain, draw, site)."""
    low, high = hdi_along(draws, prob)
    return pd.DataFrame(
        {
            "site": [str(s) for s in draws["site"].values],
            "mean": draws.mean(SAMPLE_DIMS).values,
            "sd": draws.std(SAMPLE_DIMS, ddof=1).values,
            "hdi_low": low,
            "hdi_high": high,
        }
    )


def site_counts(data: pd.DataFrame, columns: dict, scale: PredictorScale = PredictorScale()) -> pd.DataFrame:
    """Per site: n, the observed outcome mean, the predictor mean (original scale) and whether it varies."""
    g, p, y = columns["group"], columns["predictor"], columns["outcome"]
    frame = pd.DataFrame({"site": data[g].astype(str).to_numpy(), "x": data[p].to_numpy(float), "y": data[y].to_numpy(float)})
    out = frame.groupby("site", sort=False).agg(
        n=("y", "size"), observed_mean=("y", "mean"), predictor_mean=("x", "mean"), distinct_x=("x", "nunique")
    )
    out["predictor_mean"] = scale.to_original(out["predictor_mean"].to_numpy())
    out["predictor_varies"] = out.pop("distinct_x") > 1
    return out.reset_index()
