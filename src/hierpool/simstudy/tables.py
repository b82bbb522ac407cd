"""Summary tables over replicates (results/simulation_study/summary/), with Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hierpool.simstudy.design import CELL, ESTIMATORS, INTERVAL_METHODS


def mc_se(values) -> float:
    """Monte Carlo standard error of a mean over independent replicates: ``sd / sqrt(R)`` (NaN for R < 2)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan")


def ratio_mc_se(numerator, denominator) -> float:
    """Monte Carlo SE of ``mean(a) / mean(b)`` for paired replicates (delta method, covariance included)."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.size < 2:
        return float("nan")
    ratio = a.mean() / b.mean()
    cov = np.cov(a, b, ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (b.mean() ** 2 * a.size)
    return float(math.sqrt(max(var, 0.0)))


def _mse_row(keys: dict, name: str, values: np.ndarray, base: np.ndarray) -> dict:
    """One estimator's MSE over replicates, its MC SE and its ratio to no pooling (paired)."""
    return {
        **keys,
        "estimator": name,
        "replicates": len(values),
        "mse": values.mean(),
        "mc_se": mc_se(values),
        "relative_to_no_pooling": values.mean() / base.mean(),
        "relative_mc_se": ratio_mc_se(values, base),
    }


def aggregate_mse(replicates: pd.DataFrame) -> pd.DataFrame:
    """MSE per cell and estimator with MC SE, relative to no pooling (paired ratio and its MC SE), and win rate."""
    rows = []
    for cell, group in replicates.groupby(CELL, sort=True):
        base = group["mse_no_pooling"].to_numpy()
        best = group[[f"mse_{e}" for e in ESTIMATORS]].mean().idxmin().removeprefix("mse_")
        for name in ESTIMATORS:
            values = group[f"mse_{name}"].to_numpy()
            row = _mse_row(dict(zip(CELL, cell)), name, values, base)
            row["beats_no_pooling_share"] = float(np.mean(values < base))
            row["lowest_mse_in_cell"] = name == best
            rows.append(row)
    return pd.DataFrame(rows)


def aggregate_by_size(sites: pd.DataFrame) -> pd.DataFrame:
    """MSE per cell, site size ``n`` and estimator (replicate means first, then MC SE over replicates)."""
    per_rep = (
        sites.groupby([*CELL, "replicate", "n"])[[f"se_{e}" for e in ESTIMATORS]]
        .mean()
        .reset_index()
    )
    rows = []
    for key, group in per_rep.groupby([*CELL, "n"], sort=True):
        base = group["se_no_pooling"].to_numpy()
        for name in ESTIMATORS:
            values = group[f"se_{name}"].to_numpy()
            rows.append(_mse_row(dict(zip([*CELL, "n"], key)), name, values, base))
    return pd.DataFrame(rows)


def aggregate_coverage(replicates: pd.DataFrame, levels=(0.9, 0.95)) -> pd.DataFrame:
    """Interval coverage of the site means per cell, method and level, with MC SE over replicates and mean width."""
    rows = []
    for cell, group in replicates.groupby(CELL, sort=True):
        for method in INTERVAL_METHODS:
            for level in levels:
                values = group[f"coverage_{method}_{level:g}"].to_numpy()
                rows.append(
                    {
                        **dict(zip(CELL, cell)),
                        "method": method,
                        "level": level,
                        "replicates": len(group),
                        "coverage": values.mean(),
                        "mc_se": mc_se(values),
                        "shortfall": level - values.mean(),
                        "mean_width": group[f"width_{method}_{level:g}"].mean(),
                    }
                )
    return pd.DataFrame(rows)


def aggregate_tau(replicates: pd.DataFrame, levels=(0.9, 0.95)) -> pd.DataFrame:
    """Recovery of tau per cell: full-Bayes posterior mean (bias, RMSE), interval coverage; EB's estimate; fit health."""
    rows = []
    for cell, group in replicates.groupby(CELL, sort=True):
        tau = float(cell[0])
        row = {
            **dict(zip(CELL, cell)),
            "replicates": len(group),
            "fb_tau_mean": group["fb_tau_mean"].mean(),
            "fb_tau_mean_mc_se": mc_se(group["fb_tau_mean"]),
            "fb_tau_bias": group["fb_tau_mean"].mean() - tau,
            "fb_tau_rmse": float(np.sqrt(np.mean((group["fb_tau_mean"] - tau) ** 2))),
        }
        for level in levels:
            row[f"fb_tau_coverage_{level:g}"] = (
                group[f"fb_tau_covers_{level:g}"].astype(float).mean()
            )
            row[f"fb_tau_width_{level:g}"] = (
                group[f"fb_tau_hi_{level:g}"] - group[f"fb_tau_lo_{level:g}"]
            ).mean()
        row.update(
            {
                "eb_tau_mean": group["eb_tau"].mean(),
                "eb_tau_bias": group["eb_tau"].mean() - tau,
                "eb_tau_rmse": float(np.sqrt(np.mean((group["eb_tau"] - tau) ** 2))),
                "eb_tau_zero_share": group["eb_tau2_is_zero"].astype(float).mean(),
                "fits_with_divergences": int((group["divergences"] > 0).sum()),
                "divergences": int(group["divergences"].sum()),
                "max_rhat": group["max_rhat"].max(),
                "min_ess_bulk": group["min_ess_bulk"].min(),
                "max_rhat_theta": group["max_rhat_theta"].max(),
                "min_ess_bulk_theta": group["min_ess_bulk_theta"].min(),
                "max_rhat_tau": group["rhat_tau"].max(),
                "min_ess_bulk_tau": group["ess_bulk_tau"].min(),
                "mean_fit_wall_s": group["fit_wall_s"].mean(),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(
    replicates: pd.DataFrame, sites: pd.DataFrame, levels=(0.9, 0.95)
) -> dict[str, pd.DataFrame]:
    """All summary tables: ``mse``, ``mse_by_size``, ``coverage``, ``tau``."""
    return {
        "mse": aggregate_mse(replicates),
        "mse_by_size": aggregate_by_size(sites),
        "coverage": aggregate_coverage(replicates, levels),
        "tau": aggregate_tau(replicates, levels),
    }
