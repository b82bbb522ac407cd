"""Shrinkage: how far partial pooling pulls each site's estimate from its own data towards the population.

All intercepts compare like with like: the site's expected outcome at the predictor's
centre (model x = 0: the grand mean when the predictor was centred, 0 when it was not).
Slopes are per unit of the original predictor.

For a varying-intercepts model with common slope beta, conditional on the hyperparameters
(alpha, beta, sigma_y, sigma_site) the site intercept has posterior mean

    E[alpha + u_j | ...] = w_j * r_j + (1 - w_j) * alpha,   w_j = n_j / (n_j + sigma_y^2 / sigma_site^2),

with ``r_j = mean_i(y_ij - beta * x_ij)`` the site's own mean moved to the centre along
the common slope. So w_j is the weight of the site's own data, and 1 - w_j the pull
towards the population: small sites (small n_j) and small between-site SD shrink most.

Two numerical checks of that formula are reported per site:

* ``exact``: the formula applied per posterior draw with r_j, then averaged. By the tower
  rule it has the same expectation as the sampled site intercept, so the deviation is
  Monte Carlo error only (a few thousandths); a large one means the fit or the variable
  mapping is wrong.
* ``plugin``: posterior-mean weight times the no-pooling model's intercept plus (1 - weight)
  times the population intercept, as the formula is usually read. This is only
  approximate and can differ noticeably because (a) the no-pooling intercept moves the
  site mean to the centre along the site's OWN slope, not the common one (matters when
  the site's predictor mean is far from the centre), (b) a mean of products is not a
  product of means (w_j, alpha and beta are uncertain and correlated), and (c) the two
  models estimate different sigma_y.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from hierpool import effects as ef
from hierpool.effects import PredictorScale

HDI_PROB = 0.95
REQUIRED = ("no_pooling", "varying_intercepts")


def fits_by_family(fits: dict, columns: dict) -> dict:
    """Map each model family to the first fit of that family (model names in the config may differ)."""
    out = {}
    for model, idata in fits.items():
        out.setdefault(ef.family(idata, columns), (model, idata))
    return out


def weight_draws(idata, n: np.ndarray | pd.Series, columns: dict, sites=None) -> xr.DataArray:
    """Shrinkage weight w_j = n_j / (n_j + sigma_y^2 / sigma_site^2) per draw: dims (chain, draw, site)."""
    sds = ef.site_sds(idata, columns)
    if sds is None:
        raise ValueError("shrinkage weights need a model with varying intercepts")
    ratio = ef.sigma(idata) ** 2 / sds[0] ** 2
    n = np.asarray(n, dtype=float)
    labels = list(sites) if sites is not None else list(range(n.size))
    n_da = xr.DataArray(n, dims="site", coords={"site": labels})
    return (n_da / (n_da + ratio)).transpose("chain", "draw", "site").rename("weight")


def site_estimates(fits: dict, data: pd.DataFrame, columns: dict, scale: PredictorScale = PredictorScale(), prob: float = HDI_PROB) -> pd.DataFrame:
    """Long table: one row per model, site and parameter (``intercept`` at the centre, ``slope``).

    Columns: model, family, parameter, site, n, mean, sd, hdi_low, hdi_high, identified.
    ``identified`` is False where only the prior informs the estimate: a no-pooling slope
    of a site whose predictor does not vary, and its intercept unless that constant
    predictor value is the centre itself.
    """
    counts = ef.site_counts(data, columns, scale)
    sites = counts["site"].tolist()
    x_model = pd.Series(data[columns["predictor"]].to_numpy(float)).groupby(data[columns["group"]].astype(str).to_numpy())
    at_center = x_model.apply(lambda v: bool(np.all(v == 0))).reindex(sites).to_numpy()
    parts = []
    for model, idata in fits.items():
        kind = ef.family(idata, columns)
        intercept, slope = ef.site_lines(idata, columns, scale, sites=sites)
        for parameter, draws in (("intercept", intercept), ("slope", slope)):
            table = ef.site_summary(draws, prob)
            table.insert(1, "n", counts["n"].to_numpy())
            if kind == "no_pooling":
                varies = counts["predictor_varies"].to_numpy()
                table["identified"] = varies if parameter == "slope" else varies | at_center
            else:
                table["identified"] = True
            table.insert(0, "parameter", parameter)
            table.insert(0, "family", kind)
            table.insert(0, "model", model)
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _mean_and_hdi(draws: xr.DataArray, prob: float, name: str) -> pd.DataFrame:
    table = ef.site_summary(draws, prob).set_index("site")
    return table[["mean", "hdi_low", "hdi_high"]].rename(columns=lambda c: name if c == "mean" else f"{name}_{c}")


def shrinkage_table(fits: dict, data: pd.DataFrame, columns: dict, scale: PredictorScale = PredictorScale(), prob: float = HDI_PROB) -> pd.DataFrame:
    """One row per site: data summaries, every model's estimate, the shrinkage weight and the two checks.

    Needs a no-pooling and a varying-intercepts fit; varying slopes and complete pooling
    are added when present. Rows are sorted by n (smallest first).
    """
    by_family = fits_by_family(fits, columns)
    missing = [f for f in REQUIRED if f not in by_family]
    if missing:
        raise ValueError(f"shrinkage needs fits of {list(REQUIRED)}; missing {missing} (have {sorted(by_family)})")
    counts = ef.site_counts(data, columns, scale)
    sites = counts["site"].tolist()
    table = counts.set_index("site")

    np_a, np_b = ef.site_lines(by_family["no_pooling"][1], columns, scale, sites=sites)
    table = table.join(_mean_and_hdi(np_a, prob, "no_pooling_intercept")).join(_mean_and_hdi(np_b, prob, "no_pooling_slope"))
    table["no_pooling_slope_identified"] = table["predictor_varies"]

    vi = by_family["varying_intercepts"][1]
    vi_a, _ = ef.site_lines(vi, columns, scale, sites=sites)
    table = table.join(_mean_and_hdi(vi_a, prob, "varying_intercepts_intercept"))
    if "varying_slopes" in by_family:
        vs_a, vs_b = ef.site_lines(by_family["varying_slopes"][1], columns, scale, sites=sites)
        table = table.join(_mean_and_hdi(vs_a, prob, "varying_slopes_intercept")).join(_mean_and_hdi(vs_b, prob, "varying_slopes_slope"))
    if "complete_pooling" in by_family:
        cp_a, cp_b = ef.population_line(by_family["complete_pooling"][1], columns, scale)
        table["complete_pooling_intercept"] = float(cp_a.mean())
        table["complete_pooling_slope"] = float(cp_b.mean())

    alpha, beta = ef.population_line(vi, columns, scale)
    alpha_summary = ef.summarise(alpha, prob)
    table["population_intercept"] = alpha_summary["mean"]
    table["population_intercept_hdi_low"] = alpha_summary["hdi_low"]
    table["population_intercept_hdi_high"] = alpha_summary["hdi_high"]

    w = weight_draws(vi, counts["n"].to_numpy(), columns, sites=sites)
    w_low, w_high = ef.hdi_along(w, prob)
    table["weight_mean"] = w.mean(("chain", "draw")).values
    table["weight_hdi_low"], table["weight_hdi_high"] = w_low, w_high

    # r_j per draw: the site's mean outcome moved to the centre along the common slope.
    x_offset = xr.DataArray(counts["predictor_mean"].to_numpy() - scale.center, dims="site", coords={"site": sites})
    y_mean = xr.DataArray(counts["observed_mean"].to_numpy(), dims="site", coords={"site": sites})
    r = y_mean - beta * x_offset
    table["adjusted_mean"] = r.mean(("chain", "draw")).values
    exact = (w * r + (1 - w) * alpha).mean(("chain", "draw"))
    table["expected_exact"] = exact.values
    table["deviation_exact"] = table["varying_intercepts_intercept"] - table["expected_exact"]
    table["expected_plugin"] = table["weight_mean"] * table["no_pooling_intercept"] + (1 - table["weight_mean"]) * table["population_intercept"]
    table["deviation_plugin"] = table["varying_intercepts_intercept"] - table["expected_plugin"]
    table["shift"] = table["varying_intercepts_intercept"] - table["no_pooling_intercept"]
    table = table.reset_index().sort_values(["n", "site"], kind="stable").reset_index(drop=True)
    table["hdi_prob"] = prob
    return table


def shrinkage_summary(table: pd.DataFrame) -> dict:
    """Headline numbers: the largest deviations of both checks, and whether small sites move most."""
    worst_exact = table.loc[table["deviation_exact"].abs().idxmax()]
    worst_plugin = table.loc[table["deviation_plugin"].abs().idxmax()]
    mc_scale = float((table["varying_intercepts_intercept_hdi_high"] - table["varying_intercepts_intercept_hdi_low"]).median())
    rank_corr = table["n"].rank().corr(table["shift"].abs().rank()) if len(table) > 2 else float("nan")
    return {
        "n_sites": int(len(table)),
        "max_abs_deviation_exact": float(abs(worst_exact["deviation_exact"])),
        "max_abs_deviation_exact_site": str(worst_exact["site"]),
        "max_abs_deviation_plugin": float(abs(worst_plugin["deviation_plugin"])),
        "max_abs_deviation_plugin_site": str(worst_plugin["site"]),
        "median_abs_deviation_plugin": float(table["deviation_plugin"].abs().median()),
        "median_interval_width": mc_scale,
        "weight_range": [float(table["weight_mean"].min()), float(table["weight_mean"].max())],
        "spearman_n_vs_abs_shift": float(rank_corr),
        "explanation": (
            "exact: w_j*r_j + (1-w_j)*alpha per draw, with r_j the site mean moved to the centre along the "
            "common slope; differs from the varying-intercepts estimate by Monte Carlo error only. plugin: "
            "mean(w_j)*no-pooling intercept + (1-mean(w_j))*mean(alpha); differs because the no-pooling intercept "
            "uses the site's own slope, means of products are not products of means, and the models' sigma differ."
        ),
    }
