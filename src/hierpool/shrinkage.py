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

from hierpool import fitinfo, posterior, roles, summaries
from hierpool.sitedata import SiteData
from hierpool.summaries import HDI_PROB

REQUIRED = ("no_pooling", "varying_intercepts")


def fits_by_role(fits: dict, columns: dict) -> dict:
    """Map each role to (model, fit) of the first fit that plays it (`roles.first_of_each_role`)."""
    formulas = {model: fitinfo.model_info(idata)["formula"] for model, idata in fits.items()}
    first = roles.first_of_each_role(formulas, columns["group"], columns.get("predictor"))
    return {role: (model, fits[model]) for role, model in first.items()}


def has_closed_form(idata) -> bool:
    """Whether the Gaussian shrinkage weight applies: a Gaussian outcome (estimated or known residual SD)."""
    return fitinfo.model_info(idata)["family"] == "gaussian"


def weight_draws(
    idata, n: np.ndarray | pd.Series, columns: dict, sites=None, residual_var=None
) -> xr.DataArray:
    """Shrinkage weight w_j = n_j / (n_j + sigma_y^2 / sigma_site^2) per draw: dims (chain, draw, site).

    ``residual_var`` (per site) replaces sigma_y^2 for summary data with a known SE per row
    (then n_j = 1 and w_j = tau^2 / (tau^2 + se_j^2)).
    """
    sds = posterior.site_sds(idata, columns)
    if sds is None:
        raise ValueError("shrinkage weights need a model with varying intercepts")
    sig2 = (
        posterior.sigma(idata) ** 2
        if residual_var is None
        else xr.DataArray(
            np.asarray(residual_var, float), dims="site", coords={"site": list(sites)}
        )
    )
    ratio = sig2 / sds[0] ** 2
    n = np.asarray(n, dtype=float)
    labels = list(sites) if sites is not None else list(range(n.size))
    n_da = xr.DataArray(n, dims="site", coords={"site": labels})
    return (n_da / (n_da + ratio)).transpose("chain", "draw", "site").rename("weight")


def site_estimates(fits: dict, site_data: SiteData, prob: float = HDI_PROB) -> pd.DataFrame:
    """Long table: one row per model, site and parameter (``intercept`` at the centre, ``slope``).

    Columns: model, role, parameter, site, n, mean, sd, hdi_low, hdi_high, identified.
    ``identified`` is False where only the prior informs the estimate: a no-pooling slope
    of a site whose predictor does not vary, and its intercept unless that constant
    predictor value is the centre itself.

    Parameters
    ----------
    fits : dict
        Model name -> InferenceData.
    site_data : SiteData
        The dataset's rows, column mapping and predictor scale.
    prob : float
        The HDI's probability.
    """
    data, columns, scale = site_data.data, site_data.columns, site_data.scale
    counts = summaries.site_counts(data, columns, scale)
    sites = counts["site"].tolist()
    x = (
        data[columns["predictor"]].to_numpy(float)
        if columns.get("predictor")
        else np.zeros(len(data))
    )
    x_model = pd.Series(x).groupby(data[columns["group"]].astype(str).to_numpy())
    at_center = x_model.apply(lambda v: bool(np.all(v == 0))).reindex(sites).to_numpy()
    parameters = ("intercept", "slope") if columns.get("predictor") else ("intercept",)
    parts = []
    for model, idata in fits.items():
        kind = fitinfo.role(idata, columns)
        intercept, slope = posterior.site_lines(idata, columns, scale, sites=sites, data=data)
        for parameter, draws in zip(parameters, (intercept, slope)):
            table = summaries.site_summary(draws, prob)
            table.insert(1, "n", counts["n"].to_numpy())
            if kind == "no_pooling":
                varies = counts["predictor_varies"].to_numpy()
                table["identified"] = varies if parameter == "slope" else varies | at_center
            else:
                table["identified"] = True
            table.insert(0, "parameter", parameter)
            table.insert(0, "role", kind)
            table.insert(0, "model", model)
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _mean_and_hdi(draws: xr.DataArray, prob: float, name: str) -> pd.DataFrame:
    table = summaries.site_summary(draws, prob).set_index("site")
    return table[["mean", "hdi_low", "hdi_high"]].rename(
        columns=lambda c: name if c == "mean" else f"{name}_{c}"
    )


def shrinkage_table(fits: dict, site_data: SiteData, prob: float = HDI_PROB) -> pd.DataFrame:
    """One row per site: data summaries, every model's estimate, the shrinkage weight and the two checks.

    Needs a no-pooling and a varying-intercepts fit (found by role); varying slopes and complete
    pooling are added when present. Rows are sorted by n (smallest first). Estimates are on the
    link scale. The population a site is pulled towards is the model's prediction for that site
    without its own effect (``population_intercept``): with a site-level predictor such as
    uranium it differs between sites. The weight and the two checks need the Gaussian closed
    form; for other families those columns are empty (``has_closed_form``). ``site_data`` is the
    dataset's rows, column mapping and predictor scale; ``prob`` the HDIs' probability.
    """
    data, columns, scale = site_data.data, site_data.columns, site_data.scale
    by_role = fits_by_role(fits, columns)
    missing = [f for f in REQUIRED if f not in by_role]
    if missing:
        raise ValueError(
            f"shrinkage needs fits of {list(REQUIRED)}; missing {missing} (have {sorted(by_role)})"
        )
    counts = summaries.site_counts(data, columns, scale)
    sites = counts["site"].tolist()
    table = counts.set_index("site")
    has_x = bool(columns.get("predictor"))

    np_a, np_b = posterior.site_lines(
        by_role["no_pooling"][1], columns, scale, sites=sites, data=data
    )
    table = table.join(_mean_and_hdi(np_a, prob, "no_pooling_intercept"))
    if has_x:
        table = table.join(_mean_and_hdi(np_b, prob, "no_pooling_slope"))
        table["no_pooling_slope_identified"] = table["predictor_varies"]

    vi = by_role["varying_intercepts"][1]
    vi_a, vi_b = posterior.site_lines(vi, columns, scale, sites=sites, data=data)
    table = table.join(_mean_and_hdi(vi_a, prob, "varying_intercepts_intercept"))
    if "varying_slopes" in by_role:
        vs_a, vs_b = posterior.site_lines(
            by_role["varying_slopes"][1], columns, scale, sites=sites, data=data
        )
        table = table.join(_mean_and_hdi(vs_a, prob, "varying_slopes_intercept")).join(
            _mean_and_hdi(vs_b, prob, "varying_slopes_slope")
        )
    if "complete_pooling" in by_role:
        cp_a, cp_b = posterior.population_line(
            by_role["complete_pooling"][1], columns, scale, data=data
        )
        table["complete_pooling_intercept"] = float(cp_a.mean())
        table["complete_pooling_slope"] = float(cp_b.mean())

    # What site j is pulled towards: its line without its own effect (alpha + covariates at the site's averages).
    target = vi_a - posterior.site_draws(
        fitinfo.posterior_dataset(vi), fitinfo.names(columns)["site_intercept"], columns
    ).sel(site=sites)
    low, high = summaries.hdi_along(target, prob)
    table["population_intercept"] = target.mean(("chain", "draw")).values
    table["population_intercept_hdi_low"], table["population_intercept_hdi_high"] = low, high
    table["shift"] = table["varying_intercepts_intercept"] - table["no_pooling_intercept"]
    table["hdi_prob"] = prob
    if not has_closed_form(vi):
        for column in (
            "weight_mean",
            "weight_hdi_low",
            "weight_hdi_high",
            "adjusted_mean",
            "expected_exact",
            "deviation_exact",
            "expected_plugin",
            "deviation_plugin",
        ):
            table[column] = np.nan
        return table.reset_index().sort_values(["n", "site"], kind="stable").reset_index(drop=True)

    known_se = fitinfo.model_info(vi)["known_se"]
    residual = None
    if known_se:
        residual = (
            data.groupby(data[columns["group"]].astype(str), sort=False)[known_se]
            .apply(lambda v: float(np.mean(v**2)))
            .loc[sites]
        )
    w = weight_draws(vi, counts["n"].to_numpy(), columns, sites=sites, residual_var=residual)
    w_low, w_high = summaries.hdi_along(w, prob)
    table["weight_mean"] = w.mean(("chain", "draw")).values
    table["weight_hdi_low"], table["weight_hdi_high"] = w_low, w_high

    # r_j per draw: the site's mean outcome moved to the centre along the common slope.
    x_offset = xr.DataArray(
        counts["predictor_mean"].to_numpy() - scale.center, dims="site", coords={"site": sites}
    )
    y_mean = xr.DataArray(counts["observed_mean"].to_numpy(), dims="site", coords={"site": sites})
    r = y_mean - vi_b * x_offset if has_x else y_mean + 0 * vi_a
    table["adjusted_mean"] = r.mean(("chain", "draw")).values
    exact = (w * r + (1 - w) * target).mean(("chain", "draw"))
    table["expected_exact"] = exact.values
    table["deviation_exact"] = table["varying_intercepts_intercept"] - table["expected_exact"]
    table["expected_plugin"] = (
        table["weight_mean"] * table["no_pooling_intercept"]
        + (1 - table["weight_mean"]) * table["population_intercept"]
    )
    table["deviation_plugin"] = table["varying_intercepts_intercept"] - table["expected_plugin"]
    return table.reset_index().sort_values(["n", "site"], kind="stable").reset_index(drop=True)


def shrinkage_summary(table: pd.DataFrame) -> dict:
    """Headline numbers: the largest deviations of both checks, and whether small sites move most.

    Without the Gaussian closed form (other families) the check entries are None and
    ``closed_form`` is False; the shifts and their relation to n are still reported.
    """
    mc_scale = float(
        (
            table["varying_intercepts_intercept_hdi_high"]
            - table["varying_intercepts_intercept_hdi_low"]
        ).median()
    )
    rank_corr = (
        table["n"].rank().corr(table["shift"].abs().rank()) if len(table) > 2 else float("nan")
    )
    out = {
        "n_sites": int(len(table)),
        "closed_form": bool(table["weight_mean"].notna().any()),
        "median_interval_width": mc_scale,
        "median_abs_shift": float(table["shift"].abs().median()),
        "spearman_n_vs_abs_shift": float(rank_corr),
        "population_varies_by_site": bool(table["population_intercept"].nunique() > 1),
    }
    if not out["closed_form"]:
        return {
            **out,
            "max_abs_deviation_exact": None,
            "max_abs_deviation_exact_site": None,
            "max_abs_deviation_plugin": None,
            "max_abs_deviation_plugin_site": None,
            "median_abs_deviation_plugin": None,
            "weight_range": None,
            "explanation": "The shrinkage weight n_j / (n_j + sigma^2 / tau^2) is the Gaussian closed form; for this family "
            "the estimates and shifts are on the link scale and no weight is computed.",
        }
    worst_exact = table.loc[table["deviation_exact"].abs().idxmax()]
    worst_plugin = table.loc[table["deviation_plugin"].abs().idxmax()]
    return {
        **out,
        "max_abs_deviation_exact": float(abs(worst_exact["deviation_exact"])),
        "max_abs_deviation_exact_site": str(worst_exact["site"]),
        "max_abs_deviation_plugin": float(abs(worst_plugin["deviation_plugin"])),
        "max_abs_deviation_plugin_site": str(worst_plugin["site"]),
        "median_abs_deviation_plugin": float(table["deviation_plugin"].abs().median()),
        "weight_range": [float(table["weight_mean"].min()), float(table["weight_mean"].max())],
        "explanation": (
            "exact: w_j*r_j + (1-w_j)*alpha_j per draw, with r_j the site mean moved to the centre along the "
            "common slope and alpha_j the site's prediction without its own effect; differs from the varying-intercepts "
            "estimate by Monte Carlo error only. plugin: mean(w_j)*no-pooling intercept + (1-mean(w_j))*mean(alpha_j); "
            "differs because the no-pooling intercept uses the site's own slope, means of products are not products of "
            "means, and the models' sigma differ."
        ),
    }
