"""How much of the outcome's variance lies between sites: ICC, VPC curve and between-site SD.

Every quantity is computed per posterior draw and only then summarised (mean, median and
a 95% highest-density interval), so an ICC summary is the posterior of the ratio, not a
ratio of posterior means.

* ICC (varying intercepts): ``sd_site^2 / (sd_site^2 + sigma^2)``, the share of the
  residual-free outcome variance that is between sites, at the predictor's centre.
* VPC(x) (varying slopes): the same share at predictor value x,
  ``var(b0_j + b1_j x) = sd0^2 + 2 rho sd0 sd1 x + x^2 sd1^2`` with x the distance from the
  centre (`between_site_variance`). ``rho`` is the correlation of the site intercepts and
  slopes of a ``correlated: true`` model; Bambi's ``(x|site)`` has none (rho = 0), so its
  VPC grows away from the centre on both sides, while a correlated model's can dip on one
  side. A varying-intercepts model has sd1 = 0, so its VPC is flat and equals its ICC.
* Between-site SD of the predicted outcome at chosen x: ``sqrt(var(b0_j + b1_j x))``, in
  the outcome's units (how far apart two typical sites' expected outcomes are).
* Bayesian R², conditional and marginal, on the same footing: `hierpool.r2`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from hierpool import fitinfo, posterior, summaries
from hierpool.fitinfo import PredictorScale
from hierpool.summaries import HDI_PROB

LATENT = {
    "logit": (np.pi**2 / 3, "pi^2/3 (logistic distribution of the latent variable)"),
    "probit": (1.0, "1 (standard normal latent variable)"),
    "cloglog": (np.pi**2 / 6, "pi^2/6 (Gumbel latent variable)"),
}


def residual_variance(
    idata, columns: dict, data: pd.DataFrame | None = None
) -> tuple[xr.DataArray, str]:
    """Within-site (residual) variance on the link scale, per draw, and its definition in words.

    Gaussian: sigma^2 (summary data with a known SE per row: the mean of se^2); t: sigma^2 nu/(nu-2)
    (undefined for nu <= 2); Bernoulli and binomial: the latent-variable variance of the link
    (logit pi^2/3, probit 1); Poisson and negative binomial (log link): the lognormal
    approximation of Nakagawa, Johnson & Schielzeth (2017), ln(1 + 1/lambda) and
    ln(1 + 1/lambda + 1/alpha), with lambda = exp(mean fixed-part prediction + total variance
    of the varying intercepts / 2). Those two need ``data``.
    """
    info = fitinfo.model_info(idata)
    family, link = info["family"], info["link"]
    post = fitinfo.posterior_dataset(idata)
    if info["known_se"]:
        if data is None:
            raise ValueError("summary data: pass the data to read the known standard errors")
        value = float(np.mean(data[info["known_se"]].to_numpy(float) ** 2))
        return posterior.zero(post) + value, f"mean known sampling variance se^2 ({value:.4g})"
    if family == "gaussian":
        return posterior.sigma(idata) ** 2, "sigma^2"
    if family == "t":
        nu = post["nu"]
        return (posterior.sigma(idata) ** 2 * (nu / (nu - 2))).where(
            nu > 2
        ), "sigma^2 nu/(nu-2) (undefined where nu <= 2)"
    if family in ("bernoulli", "binomial"):
        if link not in LATENT:
            raise ValueError(f"no latent-scale residual variance for the {link} link")
        value, text = LATENT[link]
        return posterior.zero(post) + value, f"latent scale: {text}"
    if family in ("poisson", "negativebinomial") and link == "log":
        if data is None:
            raise ValueError(
                f"{family}: pass the data (the residual variance depends on the mean count)"
            )
        pooled = fitinfo.role(idata, columns) == "no_pooling"
        eta = posterior.mu_draws(idata, data, columns, include_site=pooled).mean(axis=-1)
        total = sum(
            (sd**2 for sd in posterior.factor_sds(idata, columns).values()), posterior.zero(post)
        )
        lam = np.exp(eta + total / 2)
        if family == "poisson":
            return np.log1p(
                1 / lam
            ), "lognormal approximation ln(1 + 1/lambda) (Nakagawa et al. 2017)"
        return np.log1p(
            1 / lam + 1 / post["alpha"]
        ), "lognormal approximation ln(1 + 1/lambda + 1/alpha) (Nakagawa et al. 2017)"
    raise ValueError(f"no residual variance defined for family {family!r} with link {link!r}")


def with_site_effects(fits: dict, columns: dict) -> dict:
    """The fits that have a varying intercept by the site (the ones a variance partition applies to)."""
    return {m: i for m, i in fits.items() if posterior.site_sds(i, columns) is not None}


def not_applicable(fits: dict, columns: dict) -> dict[str, str]:
    """Model -> why the site ICC does not apply to it (every model left out of the ICC table is listed)."""
    reasons = {
        "complete_pooling": "ICC: no varying intercept in this model (sites are ignored)",
        "no_pooling": "ICC: no varying intercept in this model (site intercepts are separate fixed effects)",
    }
    return {
        m: reasons.get(
            fitinfo.role(i, columns),
            f"ICC: no varying intercept by {columns['group']!r} in this model",
        )
        for m, i in fits.items()
        if m not in with_site_effects(fits, columns)
    }


def other_factors_variance(idata, columns: dict) -> xr.DataArray | float:
    """Summed intercept variances of the grouping factors other than the site."""
    return sum(
        sd**2
        for factor, sd in posterior.factor_sds(idata, columns).items()
        if factor != columns["group"]
    )


def icc_draws(
    idata, columns: dict, data: pd.DataFrame | None = None, factor: str | None = None
) -> xr.DataArray:
    """ICC per draw of one grouping factor (the site by default), dims (chain, draw).

    sd_factor^2 / (sum of every factor's intercept variance + residual variance): with one
    factor and a Gaussian outcome, sd_site^2 / (sd_site^2 + sigma^2). For a varying-slopes
    model this is the VPC at the predictor's centre.
    """
    sds = posterior.factor_sds(idata, columns)
    factor = factor or columns["group"]
    if factor not in sds:
        raise ValueError(f"no varying intercept by {factor!r} in this fit: an ICC needs one")
    resid, _ = residual_variance(idata, columns, data)
    total = sum(sd**2 for sd in sds.values()) + resid
    return (sds[factor] ** 2 / total).rename("icc")


def icc_table(
    fits: dict, columns: dict, prob: float = HDI_PROB, data: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per fit and grouping factor with a varying intercept: the ICC summarised over draws.

    The site's row is the ICC at the predictor's centre (``vpc_at_center`` for varying slopes);
    further factors (e.g. classes within schools) get ``icc`` rows of their own.
    """
    rows = []
    for model, idata in fits.items():
        role = fitinfo.role(idata, columns)
        for factor in posterior.factor_sds(idata, columns):
            site = factor == columns["group"]
            rows.append(
                {
                    "model": model,
                    "role": role,
                    "factor": factor,
                    "quantity": "vpc_at_center" if site and role == "varying_slopes" else "icc",
                    **summaries.summarise(icc_draws(idata, columns, data, factor), prob),
                    "hdi_prob": prob,
                    "residual_variance": residual_variance(idata, columns, data)[1],
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "model",
            "role",
            "factor",
            "quantity",
            *summaries.SUMMARY,
            "hdi_prob",
            "residual_variance",
        ],
    )


def site_variance_draws(
    idata, columns: dict, x, scale: PredictorScale = PredictorScale()
) -> xr.DataArray:
    """Between-site variance of the expected outcome at ORIGINAL predictor values ``x``: dims (chain, draw, x)."""
    sds = posterior.site_sds(idata, columns, scale)
    if sds is None:
        raise ValueError(
            "this fit has no site SDs (complete or no pooling): no between-site variance to partition"
        )
    sd0, sd1 = sds
    rho = posterior.site_correlation(idata, columns)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    dist = xr.DataArray(
        x - scale.center, dims="x", coords={"x": x}
    )  # original units from the centre
    return between_site_variance(sd0, sd1, 0.0 if rho is None else rho, dist).transpose(
        "chain", "draw", "x"
    )


def between_site_variance(sd0, sd1, rho, x):
    """``var(b0_j + b1_j x) = sd0² + 2 rho sd0 sd1 x + sd1² x²``, x measured from the centre.

    Parameters
    ----------
    sd0, sd1 : array_like
        SDs of the site intercepts and slopes (draws, broadcast against ``x``).
    rho : array_like
        Their correlation (0 for independent effects, as Bambi's ``(x|g)``).
    x : array_like
        Predictor values as distances from the centre, in the units of ``sd1``.
    """
    return sd0**2 + 2 * rho * sd0 * sd1 * x + sd1**2 * x**2


def vpc_draws(
    idata,
    columns: dict,
    x,
    scale: PredictorScale = PredictorScale(),
    data: pd.DataFrame | None = None,
) -> xr.DataArray:
    """VPC(x) = var_site(x) / (var_site(x) + other factors' variance + residual variance) per draw, dims (chain, draw, x)."""
    var_site = site_variance_draws(idata, columns, x, scale)
    rest = other_factors_variance(idata, columns) + residual_variance(idata, columns, data)[0]
    return (var_site / (var_site + rest)).rename("vpc")


def _x_table(
    idata, columns: dict, x, scale: PredictorScale, prob: float, data: pd.DataFrame | None = None
) -> pd.DataFrame:
    var_site = site_variance_draws(idata, columns, x, scale)
    vpc = vpc_draws(idata, columns, x, scale, data)
    site_sd = np.sqrt(var_site)
    vpc_low, vpc_high = summaries.hdi_along(vpc, prob)
    sd_low, sd_high = summaries.hdi_along(site_sd, prob)
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


def vpc_curve(
    fits: dict,
    columns: dict,
    scale: PredictorScale,
    x_min: float,
    x_max: float,
    n: int = 60,
    prob: float = HDI_PROB,
    data: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """VPC and between-site SD over a grid of the observed predictor range, per fit with site effects.

    Columns: model, role, x (original scale), x_model, vpc_mean, vpc_median,
    vpc_hdi_low, vpc_hdi_high, site_sd_mean, site_sd_hdi_low, site_sd_hdi_high.
    """
    grid = predictor_grid(x_min, x_max, n)
    parts = []
    for model, idata in with_site_effects(fits, columns).items():
        table = _x_table(idata, columns, grid, scale, prob, data)
        table.insert(0, "role", fitinfo.role(idata, columns))
        table.insert(0, "model", model)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def predictor_points(
    data: pd.DataFrame, columns: dict, scale: PredictorScale = PredictorScale()
) -> dict[str, float]:
    """Min, quartiles and max of the observed predictor on the ORIGINAL scale (labels as keys)."""
    x = scale.to_original(data[columns["predictor"]].to_numpy(dtype=float))
    q = np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(["min", "q25", "median", "q75", "max"], map(float, q)))


def between_site_sd(
    fits: dict,
    columns: dict,
    scale: PredictorScale,
    points: dict[str, float],
    prob: float = HDI_PROB,
    data: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Between-site SD of the expected outcome (and the VPC) at labelled ORIGINAL predictor values, per fit.

    Columns: model, role, point (e.g. ``q25``), then as in `vpc_curve`.
    """
    parts = []
    for model, idata in with_site_effects(fits, columns).items():
        table = _x_table(idata, columns, list(points.values()), scale, prob, data)
        table.insert(0, "point", list(points))
        table.insert(0, "role", fitinfo.role(idata, columns))
        table.insert(0, "model", model)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def variance_summary(
    icc: pd.DataFrame,
    r2: pd.DataFrame,
    site_sd: pd.DataFrame,
    skipped: dict | None = None,
    group: str | None = None,
) -> dict:
    """The headline numbers as a small dict (for JSON).

    ``icc``: the site ICC per model; ``icc_other_factors``: per model, the ICC of every further
    grouping factor; ``r2`` per model and kind; ``site_sd`` per model and predictor point;
    ``not_applicable``: model -> why it has no ICC (`not_applicable`).
    """
    out = {
        "icc": {},
        "icc_other_factors": {},
        "r2": {},
        "site_sd": {},
        "hdi_prob": HDI_PROB,
        "not_applicable": dict(skipped or {}),
    }
    for r in icc.itertuples():
        entry = {
            "role": r.role,
            "quantity": r.quantity,
            "mean": r.mean,
            "median": r.median,
            "hdi": [r.hdi_low, r.hdi_high],
            "residual_variance": r.residual_variance,
        }
        if group is None or r.factor == group:
            out["icc"][r.model] = entry
        else:
            out["icc_other_factors"].setdefault(r.model, {})[r.factor] = entry
    for r in r2.itertuples():
        out["r2"].setdefault(r.model, {})[r.kind] = {"mean": r.mean, "hdi": [r.hdi_low, r.hdi_high]}
    for r in site_sd.itertuples() if len(site_sd) else []:
        out["site_sd"].setdefault(r.model, {})[r.point] = {
            "x": r.x,
            "mean": r.site_sd_mean,
            "hdi": [r.site_sd_hdi_low, r.site_sd_hdi_high],
        }
    return out
