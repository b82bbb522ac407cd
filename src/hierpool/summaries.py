"""Posterior summaries at the one interval level: mean, SD and HDI of draws, per site, per coefficient."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hierpool.fitinfo import PredictorScale, posterior_dataset
from hierpool.posterior import SAMPLE_DIMS

# The interval level of every summary, table, figure and report sentence: change it here only.
HDI_PROB = 0.95
# The columns `summarise` gives, in this order.
SUMMARY = ("mean", "median", "sd", "hdi_low", "hdi_high")


def summarise(draws, prob: float = HDI_PROB, prefix: str = "") -> dict[str, float]:
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


def hdi_along(draws: xr.DataArray, prob: float = HDI_PROB) -> tuple[np.ndarray, np.ndarray]:
    """HDI of draws (chain, draw, *rest) for every entry of the remaining dims: (low, high) arrays."""
    bounds = az.hdi(draws.rename("v").to_dataset(), hdi_prob=prob)["v"]
    rest = [d for d in draws.dims if d not in SAMPLE_DIMS]
    bounds = bounds.transpose(*rest, "hdi")
    return bounds.sel(hdi="lower").values, bounds.sel(hdi="higher").values


def site_summary(draws: xr.DataArray, prob: float = HDI_PROB) -> pd.DataFrame:
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


def site_counts(
    data: pd.DataFrame, columns: dict, scale: PredictorScale = PredictorScale()
) -> pd.DataFrame:
    """Per site: n, the observed outcome mean, the predictor mean (original scale) and whether it varies."""
    g, p, y = columns["group"], columns.get("predictor"), columns["outcome"]
    x = data[p].to_numpy(float) if p else np.zeros(len(data))
    frame = pd.DataFrame(
        {"site": data[g].astype(str).to_numpy(), "x": x, "y": data[y].to_numpy(float)}
    )
    out = frame.groupby("site", sort=False).agg(
        n=("y", "size"),
        observed_mean=("y", "mean"),
        predictor_mean=("x", "mean"),
        distinct_x=("x", "nunique"),
    )
    out["predictor_mean"] = scale.to_original(out["predictor_mean"].to_numpy())
    out["predictor_varies"] = out.pop("distinct_x") > 1
    return out.reset_index()


def coefficient_table(idata, columns: dict, prob: float = HDI_PROB) -> pd.DataFrame:
    """Every population-level parameter of a fit with ``az.summary``: mean, SD, HDI, MCSE, ESS, R-hat.

    Per-site parameters (varying effects and the no-pooling site terms) are left out: they are in
    the site tables. Coefficients are on the model scale (link scale, centred predictor).
    """
    post = posterior_dataset(idata)
    group = columns["group"]
    keep = [
        v
        for v in post.data_vars
        if not ("|" in v and not v.endswith("_sigma"))
        and v != group
        and not v.startswith(f"{group}:")
        and not v.endswith("_offset")
        and post[v].ndim <= 3
    ]
    if not keep:  # no pooling without other terms: every parameter is per site
        return pd.DataFrame(
            columns=[
                "parameter",
                "mean",
                "sd",
                "hdi_low",
                "hdi_high",
                "mcse_mean",
                "ess_bulk",
                "ess_tail",
                "r_hat",
            ]
        )
    table = az.summary(idata, var_names=keep, hdi_prob=prob, round_to="none")
    table.index.name = "parameter"
    return table.reset_index()


CORRELATION_COLUMNS = ("model", "factor", "pair", "quantity", *SUMMARY, "hdi_prob")


def correlation_table(fits: dict, prob: float = HDI_PROB) -> pd.DataFrame:
    """Correlation and covariance of each pair of correlated varying terms, per model and factor.

    Only models fitted with ``correlated: true`` (`hierpool.correlated`) have them
    (``<factor>_corr`` and ``<factor>_cov``); an empty table otherwise. Covariances are on the
    model scale (link scale, the predictor as the model saw it).
    """
    rows = []
    for model, idata in fits.items():
        post = posterior_dataset(idata)
        for var in post.data_vars:
            name = str(var)
            for suffix, quantity in (("_corr", "correlation"), ("_cov", "covariance")):
                if not name.endswith(suffix):
                    continue
                draws = post[var]
                (pair_dim,) = [d for d in draws.dims if d not in SAMPLE_DIMS]
                for pair in draws[pair_dim].values:
                    rows.append(
                        {
                            "model": model,
                            "factor": name[: -len(suffix)],
                            "pair": str(pair),
                            "quantity": quantity,
                            **summarise(draws.sel({pair_dim: pair}), prob),
                            "hdi_prob": prob,
                        }
                    )
    return pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))
