"""Parameter recovery on simulated data: do the fits find the truth the data were drawn from?

The truth (``truth.json``) is stated on the ORIGINAL predictor scale, at predictor = 0:
site j has ``y = b0_j + b1_j * x + e``. The models see the predictor centred (and maybe
scaled), so every intercept here is the expected outcome at the centre ``c``, and the
truth is converted to match:

* population intercept at the centre: ``b0 + b1 * c``;
* site mean at the centre: ``b0_j + b1_j * c``;
* SD of the site intercepts at the centre: ``sqrt(sd0^2 + c^2 sd1^2 + 2 rho c sd0 sd1)``.
  This is not ``sd_intercept`` of the spec unless c = 0: with c = 3 and sd1 = 0.2 the
  intercepts at the centre spread by 0.78, not 0.5;
* correlation of the site intercepts at the centre with the slopes (``correlated: true``
  models): ``(rho sd0 + c sd1) / sd_intercept_at_centre``;
* slopes, their SD and sigma do not depend on where the intercept is taken (slopes are
  compared per unit of the original predictor).

Intervals are highest-density intervals (90% and 95%). ``truth_realised`` gives the
value in the simulated sites themselves (mean and SD over the drawn sites), which with
few sites can sit noticeably away from the population value; ``realised_z`` says by how
many standard errors of a J-site mean. A population truth outside its interval together
with a large ``|realised_z|`` means an unusual draw of sites, not a fitting problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierpool import fitinfo, posterior, summaries
from hierpool.fitinfo import PredictorScale

PROBS = (0.90, summaries.HDI_PROB)


def true_site_effects(truth: dict, scale: PredictorScale) -> pd.DataFrame:
    """Per simulated site: n, true intercept at the centre (= true site mean there) and true slope."""
    sites = pd.DataFrame(truth["sites"])
    return pd.DataFrame(
        {
            "site": sites["site"].astype(str),
            "n_true": sites["n"].astype(int),
            "intercept": sites["intercept"] + sites["slope"] * scale.center,
            "slope": sites["slope"].astype(float),
        }
    )


def true_population(truth: dict, scale: PredictorScale) -> pd.DataFrame:
    """Population parameters converted to the model's centring, with the spec and realised values beside them."""
    pop = truth["population"]
    c = scale.center
    rho = float(pop.get("correlation", 0.0))
    sd0, sd1 = float(pop["sd_intercept"]), float(pop["sd_slope"])
    sites = true_site_effects(truth, scale)
    sd0_c = np.sqrt(sd0**2 + c**2 * sd1**2 + 2 * rho * c * sd0 * sd1)
    rows = [
        (
            "intercept",
            pop["intercept"],
            pop["intercept"] + pop["slope"] * c,
            sites["intercept"].mean(),
        ),
        ("slope", pop["slope"], pop["slope"], sites["slope"].mean()),
        (
            "sd_intercept",
            sd0,
            sd0_c,
            sites["intercept"].std(ddof=1),
        ),
        ("sd_slope", sd1, sd1, sites["slope"].std(ddof=1)),
    ]
    if sd1 > 0 and sd0_c > 0:  # corr(b0_j + b1_j c, b1_j) = (rho sd0 + c sd1) / sd0_c
        realised = (
            np.corrcoef(sites["intercept"], sites["slope"])[0, 1] if len(sites) > 2 else np.nan
        )
        rows.append(("correlation", rho, (rho * sd0 + c * sd1) / sd0_c, realised))
    if "sigma" in pop:  # Gaussian and t outcomes only
        rows.append(("sigma", pop["sigma"], pop["sigma"], np.nan))
    table = pd.DataFrame(rows, columns=["parameter", "truth_spec", "truth", "truth_realised"])
    # How unusual the drawn sites are: (realised mean - population mean) in standard errors of a mean of J sites.
    n_sites = len(sites)
    se = {"intercept": table.loc[2, "truth"] / np.sqrt(n_sites), "slope": sd1 / np.sqrt(n_sites)}
    table["realised_z"] = [
        (r.truth_realised - r.truth) / se[r.parameter]
        if r.parameter in se and se[r.parameter] > 0
        else np.nan
        for r in table.itertuples()
    ]
    return table


def population_draws(idata, columns: dict, scale: PredictorScale) -> dict:
    """The population parameters a fit has, as draws (intercept at the centre, slopes per original unit)."""
    out = {}
    line = posterior.population_line(idata, columns, scale)
    if line is not None:
        out["intercept"], out["slope"] = line
    sds = posterior.site_sds(idata, columns, scale)
    if sds is not None:
        out["sd_intercept"] = sds[0]
        if fitinfo.role(idata, columns) == "varying_slopes":
            out["sd_slope"] = sds[1]
        rho = posterior.site_correlation(idata, columns)
        if rho is not None:
            out["correlation"] = rho
    if "sigma" in fitinfo.posterior_dataset(idata):
        out["sigma"] = posterior.sigma(idata)
    return out


def _interval_columns(draws, truth, probs) -> dict:
    out = {}
    for prob in probs:
        tag = f"{round(prob * 100):d}"
        s = summaries.summarise(draws, prob)
        out[f"hdi{tag}_low"], out[f"hdi{tag}_high"] = s["hdi_low"], s["hdi_high"]
        out[f"in_{tag}"] = bool(s["hdi_low"] <= truth <= s["hdi_high"])
    return out


def population_recovery(
    fits: dict, truth: dict, columns: dict, scale: PredictorScale, probs=PROBS
) -> pd.DataFrame:
    """One row per model and population parameter: truth, posterior mean/SD, 90% and 95% HDI, truth inside?"""
    target = true_population(truth, scale).set_index("parameter")
    rows = []
    for model, idata in fits.items():
        for parameter, draws in population_draws(idata, columns, scale).items():
            if parameter not in target.index:
                continue
            t = target.loc[parameter]
            values = np.asarray(draws).ravel()
            rows.append(
                {
                    "model": model,
                    "role": fitinfo.role(idata, columns),
                    "parameter": parameter,
                    "truth_spec": t["truth_spec"],
                    "truth": t["truth"],
                    "truth_realised": t["truth_realised"],
                    "realised_z": t["realised_z"],
                    "mean": values.mean(),
                    "sd": values.std(ddof=1),
                    **_interval_columns(values, t["truth"], probs),
                    "error": values.mean() - t["truth"],
                }
            )
    return pd.DataFrame(rows)


def site_recovery(
    fits: dict, data: pd.DataFrame, truth: dict, columns: dict, scale: PredictorScale, probs=PROBS
) -> pd.DataFrame:
    """One row per model, site and parameter (site ``intercept`` = site mean at the centre, ``slope``).

    Only parameters that the model lets vary by site are listed (a varying-intercepts
    model has no site slopes); complete pooling is included as the reference that
    ignores sites. Columns: model, role, parameter, site, n, truth, mean, sd, the HDI
    bounds and in_90/in_95, error (mean - truth).
    """
    counts = summaries.site_counts(data, columns, scale)
    true_sites = true_site_effects(truth, scale).set_index("site")
    sites = [s for s in counts["site"] if s in true_sites.index]
    if not sites:
        raise ValueError(
            "no site of the data is in truth.json: is this the simulated dataset the truth belongs to?"
        )
    n = counts.set_index("site").loc[sites, "n"].to_numpy()
    parts = []
    for model, idata in fits.items():
        kind = fitinfo.role(idata, columns)
        intercept, slope = posterior.site_lines(idata, columns, scale, sites=sites, data=data)
        params = {"intercept": intercept}
        if kind in ("no_pooling", "varying_slopes", "complete_pooling"):
            params["slope"] = slope
        for parameter, draws in params.items():
            table = summaries.site_summary(draws, probs[-1])[["site", "mean", "sd"]]
            table.insert(0, "parameter", parameter)
            table.insert(0, "role", kind)
            table.insert(0, "model", model)
            table.insert(4, "n", n)
            table.insert(5, "truth", true_sites.loc[sites, parameter].to_numpy())
            for prob in probs:
                tag = f"{round(prob * 100):d}"
                low, high = summaries.hdi_along(draws, prob)
                table[f"hdi{tag}_low"], table[f"hdi{tag}_high"] = low, high
                table[f"in_{tag}"] = (low <= table["truth"]) & (table["truth"] <= high)
            table["error"] = table["mean"] - table["truth"]
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


def site_recovery_summary(sites: pd.DataFrame, probs=PROBS) -> pd.DataFrame:
    """Per model and parameter: RMSE and mean |error| of the posterior means, coverage of the HDIs, mean width."""
    rows = []
    for (model, role, parameter), part in sites.groupby(["model", "role", "parameter"], sort=False):
        row = {
            "model": model,
            "role": role,
            "parameter": parameter,
            "n_sites": int(len(part)),
            "rmse": float(np.sqrt(np.mean(part["error"] ** 2))),
            "mean_abs_error": float(part["error"].abs().mean()),
        }
        for prob in probs:
            tag = f"{round(prob * 100):d}"
            row[f"coverage_{tag}"] = float(part[f"in_{tag}"].mean())
            row[f"mean_width_{tag}"] = float(
                (part[f"hdi{tag}_high"] - part[f"hdi{tag}_low"]).mean()
            )
        rows.append(row)
    return pd.DataFrame(rows)


def recovery_verdict(population: pd.DataFrame, summary: pd.DataFrame) -> dict:
    """Headline numbers: RMSE no pooling vs partial pooling, coverage, and which population truths were missed."""
    rmse = {f"{r.model}/{r.parameter}": r.rmse for r in summary.itertuples()}
    coverage = {
        f"{r.model}/{r.parameter}": {"90": r.coverage_90, "95": r.coverage_95}
        for r in summary.itertuples()
    }

    def best(role: str, parameter: str):
        part = summary[(summary["role"] == role) & (summary["parameter"] == parameter)]
        return float(part["rmse"].min()) if len(part) else None

    comparison = {}
    for parameter, partial in (
        ("intercept", ("varying_intercepts", "varying_slopes")),
        ("slope", ("varying_slopes",)),
    ):
        none = best("no_pooling", parameter)
        pp = {f: best(f, parameter) for f in partial if best(f, parameter) is not None}
        if none is None or not pp:
            continue
        comparison[parameter] = {
            "no_pooling_rmse": none,
            "partial_pooling_rmse": pp,
            "partial_pooling_lower": {f: v < none for f, v in pp.items()},
        }
    partial_sites = summary[summary["role"].isin(["varying_intercepts", "varying_slopes"])]
    missed = population[~population["in_95"]]
    return {
        "site_rmse": rmse,
        "site_coverage": coverage,
        "no_vs_partial_pooling": comparison,
        "partial_pooling_site_coverage_95": float(
            np.average(partial_sites["coverage_95"], weights=partial_sites["n_sites"])
        )
        if len(partial_sites)
        else None,
        "partial_pooling_site_coverage_90": float(
            np.average(partial_sites["coverage_90"], weights=partial_sites["n_sites"])
        )
        if len(partial_sites)
        else None,
        "population_truth_outside_95": [f"{r.model}/{r.parameter}" for r in missed.itertuples()],
        "population_coverage_95": float(population["in_95"].mean()) if len(population) else None,
    }
