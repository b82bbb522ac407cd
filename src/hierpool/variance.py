"""How much of the outcome's variance lies between sites: ICC, VPC curve, between-site SD and Bayesian R².

Every quantity is computed per posterior draw and only then summarised (mean, median and
a 95% highest-density interval), so an ICC summary is the posterior of the ratio, not a
ratio of posterior means.

* ICC (varying intercepts): ``sd_site^2 / (sd_site^2 + sigma^2)``, the share of the
  residual-free outcome variance that is between sites, at the predictor's centre.
* VPC(x) (varying slopes): the same share at predictor value x. With independent site
  intercepts and slopes (Bambi's ``(x|site)`` has no correlation term)
  ``var(b0_j + b1_j x) = sd0^2 + x^2 sd1^2`` with x on the model scale (distance from the
  centre), so the VPC grows away from the centre. A varying-intercepts model has sd1 = 0,
  so its VPC is flat and equals its ICC.
* Between-site SD of the predicted outcome at chosen x: ``sqrt(sd0^2 + x^2 sd1^2)``, in
  the outcome's units (how far apart two typical sites' expected outcomes are).
* Bayesian R² (Gelman, Goodrich, Gabry & Vehtari 2019): per draw,
  ``var_n(mu_n) / (var_n(mu_n) + sigma^2)``.
  - conditional: ``mu`` includes the site effects;
  - marginal: ``mu`` is the population-level line only. What that line leaves unexplained
    is the site variation plus sigma^2, so the denominator adds the model's between-site
    variance at each observation's x, averaged over observations (as in Nakagawa &
    Schielzeth's marginal R²). Using sigma^2 alone there would credit the predictor with
    the between-site variance and overstate the marginal R².
  No pooling has no population-level line, so it has a conditional R² only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from hierpool import effects as ef
from hierpool.effects import PredictorScale

HDI_PROB = 0.95


def icc_draws(idata, columns: dict) -> xr.DataArray:
    """ICC per draw: sd_site_intercept^2 / (sd_site_intercept^2 + sigma^2), dims (chain, draw).

    For a varying-slopes model this is the VPC at the predictor's centre.
    """
    sds = ef.site_sds(idata, columns)
    if sds is None:
        raise ValueError(f"no site-intercept SD ({ef.names(columns)['sd_intercept']!r}) in this fit: ICC needs varying intercepts")
    var_site = sds[0] ** 2
    return (var_site / (var_site + ef.sigma(idata) ** 2)).rename("icc")


def icc_table(fits: dict, columns: dict, prob: float = HDI_PROB) -> pd.DataFrame:
    """One row per fit with site effects: the ICC (at the predictor's centre) summarised over draws."""
    rows = []
    for model, idata in fits.items():
        if ef.site_sds(idata, columns) is None:
            continue
        kind = ef.family(idata, columns)
        rows.append(
            {
                "model": model,
                "family": kind,
                "quantity": "icc" if kind == "varying_intercepts" else "vpc_at_center",
                **ef.summarise(icc_draws(idata, columns), prob),
                "hdi_prob": prob,
            }
        )
    return pd.DataFrame(rows, columns=["model", "family", "quantity", "mean", "median", "sd", "hdi_low", "hdi_high", "hdi_prob"])


def site_variance_draws(idata, columns: dict, x, scale: PredictorScale = PredictorScale()) -> xr.DataArray:
    """Between-site variance of the expected outcome at ORIGINAL predictor values ``x``: dims (chain, draw, x)."""
    sds = ef.site_sds(idata, columns, scale)
    if sds is None:
        raise ValueError("this fit has no site SDs (complete or no pooling): no between-site variance to partition")
    sd0, sd1 = sds
    x = np.atleast_1d(np.asarray(x, dtype=float))
    dist = xr.DataArray(x - scale.center, dims="x", coords={"x": x})  # original units from the centre
    return (sd0**2 + dist**2 * sd1**2).transpose("chain", "draw", "x")


def vpc_draws(idata, columns: dict, x, scale: PredictorScale = PredictorScale()) -> xr.DataArray:
    """VPC(x) = var_site(x) / (var_site(x) + sigma^2) per draw, dims (chain, draw, x), x on the original scale."""
    var_site = site_variance_draws(idata, columns, x, scale)
    return (var_site / (var_site + ef.sigma(idata) ** 2)).rename("vpc")


def _x_table(idata, columns: dict, x, scale: PredictorScale, prob: float) -> pd.DataFrame:
    var_site = site_variance_draws(idata, columns, x, scale)
    vpc = var_site / (var_site + ef.sigma(idata) ** 2)
    site_sd = np.sqrt(var_site)
    vpc_low, vpc_high = ef.hdi_along(vpc, prob)
    sd_low, sd_high = ef.hdi_along(site_sd, prob)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return pd.DataFrame(
        {
            "x": x,
            "x_model": scale.to_model(x),
            "vpc_mean": vpc.mean(("chain", "draw")).values,
            "vpc_median": vpc.median(("chain", "draw")).values,
            "vpc_hdi_low": vpc_low,
            "vpc_hdi_high": vpc_high,
            "site_sd_mean": site_sd.mean(("chain", "draw")).values,
            "site_sd_hdi_low": sd_low,
            "site_sd_hdi_high": sd_high,
        }
    )


def predictor_grid(x_min: float, x_max: float, n: int = 60) -> np.ndarray:
    """Evenly spaced ORIGINAL-scale predictor values over the observed range (a single point if it is constant)."""
    if not np.isfinite([x_min, x_max]).all() or x_max < x_min:
        raise ValueError(f"bad predictor range [{x_min}, {x_max}]")
    return np.linspace(x_min, x_max, n) if x_max > x_min else np.array([float(x_min)])


def vpc_curve(fits: dict, columns: dict, scale: PredictorScale, x_min: float, x_max: float, n: int = 60, prob: float = HDI_PROB) -> pd.DataFrame:
    """VPC and between-site SD over a grid of the observed predictor range, per fit with site effects.

    Columns: model, family, x (original scale), x_model, vpc_mean, vpc_median,
    vpc_hdi_low, vpc_hdi_high, site_sd_mean, site_sd_hdi_low, site_sd_hdi_high.
    """
    grid = predictor_grid(x_min, x_max, n)
    parts = []
    for model, idata in fits.items():
        if ef.site_sds(idata, columns) is None:
            continue
        table = _x_table(idata, columns, grid, scale, prob)
        table.insert(0, "family", ef.family(idata, columns))
        table.insert(0, "model", model)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def predictor_points(data: pd.DataFrame, columns: dict, scale: PredictorScale = PredictorScale()) -> dict[str, float]:
    """Min, quartiles and max of the observed predictor on the ORIGINAL scale (labels as keys)."""
    x = scale.to_original(data[columns["predictor"]].to_numpy(dtype=float))
    q = np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(["min", "q25", "median", "q75", "max"], map(float, q)))


def between_site_sd(fits: dict, columns: dict, scale: PredictorScale, points: dict[str, float], prob: float = HDI_PROB) -> pd.DataFrame:
    """Between-site SD of the expected outcome (and the VPC) at labelled ORIGINAL predictor values, per fit.

    Columns: model, family, point (e.g. ``q25``), then as in `vpc_curve`.
    """
    parts = []
    for model, idata in fits.items():
        if ef.site_sds(idata, columns) is None:
            continue
        table = _x_table(idata, columns, list(points.values()), scale, prob)
        table.insert(0, "point", list(points))
        table.insert(0, "family", ef.family(idata, columns))
        table.insert(0, "model", model)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _var_over_obs(mu: np.ndarray) -> np.ndarray:
    return mu.var(axis=-1, ddof=1)


def bayes_r2_draws(idata, data: pd.DataFrame, columns: dict, kind: str = "conditional") -> np.ndarray:
    """Bayesian R² per draw, shape (chain, draw); ``kind`` is ``conditional`` or ``marginal`` (see module doc)."""
    sig2 = ef.sigma(idata).values ** 2
    if kind == "conditional":
        var_fit = _var_over_obs(ef.mu_draws(idata, data, columns, include_site=True))
        return var_fit / (var_fit + sig2)
    if kind == "marginal":
        var_fit = _var_over_obs(ef.mu_draws(idata, data, columns, include_site=False))
        var_site = np.zeros_like(sig2)
        sds = ef.site_sds(idata, columns)
        if sds is not None:
            x = data[columns["predictor"]].to_numpy(dtype=float)  # model scale: distance from the centre
            sd0, sd1 = (s.values for s in sds)
            var_site = sd0**2 + sd1**2 * np.mean(x**2)
        return var_fit / (var_fit + var_site + sig2)
    raise ValueError(f"kind must be 'conditional' or 'marginal', got {kind!r}")


R2_DEFINITIONS = {
    "conditional": "var(mu with site effects) / (var(mu) + sigma^2)",
    "marginal": "var(mu population-level) / (var(mu) + between-site variance + sigma^2)",
}


def r2_table(fits: dict, data: pd.DataFrame, columns: dict, prob: float = HDI_PROB) -> pd.DataFrame:
    """Conditional and marginal Bayesian R² per model (no pooling: conditional only)."""
    rows = []
    for model, idata in fits.items():
        kind_of_model = ef.family(idata, columns)
        for kind in ("conditional", "marginal"):
            if kind == "marginal" and kind_of_model == "no_pooling":
                continue
            rows.append(
                {
                    "model": model,
                    "family": kind_of_model,
                    "kind": kind,
                    **ef.summarise(bayes_r2_draws(idata, data, columns, kind), prob),
                    "hdi_prob": prob,
                    "definition": R2_DEFINITIONS[kind],
                }
            )
    return pd.DataFrame(rows, columns=["model", "family", "kind", "mean", "median", "sd", "hdi_low", "hdi_high", "hdi_prob", "definition"])


def variance_summary(icc: pd.DataFrame, r2: pd.DataFrame, site_sd: pd.DataFrame) -> dict:
    """The headline numbers as a small dict (for JSON): ICC per model, R² per model and kind, site SD range."""
    out = {
        "icc": {r.model: {"family": r.family, "quantity": r.quantity, "mean": r.mean, "median": r.median, "hdi": [r.hdi_low, r.hdi_high]} for r in icc.itertuples()},
        "r2": {},
        "site_sd": {},
        "hdi_prob": HDI_PROB,
    }
    for r in r2.itertuples():
        out["r2"].setdefault(r.model, {})[r.kind] = {"mean": r.mean, "hdi": [r.hdi_low, r.hdi_high]}
    for r in site_sd.itertuples() if len(site_sd) else []:
        out["site_sd"].setdefault(r.model, {})[r.point] = {"x": r.x, "mean": r.site_sd_mean, "hdi": [r.site_sd_hdi_low, r.site_sd_hdi_high]}
    return out
