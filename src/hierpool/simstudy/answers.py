"""The study's findings as numbers (findings.json), computed from the summary tables; the report words them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierpool.simstudy.design import CELL, ESTIMATORS, INTERVAL_METHODS


def _cell_name(row) -> str:
    return f"tau={row['tau']:g}, {row['design']}, J={int(row['n_sites'])}"


def findings(tables: dict[str, pd.DataFrame], grid: dict | str = "", level: float = 0.95) -> dict:
    """The study's answers as numbers, computed from the summary tables (nothing typed in).

    Keys: ``partial_vs_no_pooling`` (per tau: full-Bayes and EB MSE relative to no pooling,
    mean and range over cells), ``complete_pooling`` (cells where it has the lowest MSE, and
    its MSE relative to full Bayes by tau), ``empirical_vs_full_bayes`` (ratio of their MSEs
    by tau and number of sites), ``small_sites`` (relative MSE by site size in the mixed-size
    design), ``eb_uncertainty`` (coverage at ``level`` of EB and full Bayes; cells where EB
    falls short by more than 2 MC SE), ``tau_recovery`` (with the fits' health) and
    ``monte_carlo`` (the MC SEs of the relative MSEs of full and empirical Bayes and of coverage);
    ``grid`` holds the run's settings (`study_record`, or just a name).
    """
    mse, by_size, cov, tau_tab = (
        tables["mse"],
        tables["mse_by_size"],
        tables["coverage"],
        tables["tau"],
    )
    wide = mse.pivot_table(index=CELL, columns="estimator", values="mse").reset_index()
    return {
        "grid": grid if isinstance(grid, dict) else {"name": grid},
        "cells": int(len(tau_tab)),
        "replicates_per_cell": sorted({int(r) for r in tau_tab["replicates"]}),
        "tau_values": sorted(float(t) for t in tau_tab["tau"].unique()),
        "designs": sorted(tau_tab["design"].unique()),
        "n_sites_values": sorted(int(j) for j in tau_tab["n_sites"].unique()),
        "level": level,
        "partial_vs_no_pooling": partial_vs_no_pooling(mse),
        "complete_pooling": complete_pooling_wins(wide),
        "empirical_vs_full_bayes": empirical_vs_full_bayes(wide),
        "small_sites": small_sites(by_size),
        "eb_uncertainty": eb_uncertainty(cov, tau_tab, level),
        "tau_recovery": tau_recovery(tau_tab),
        "monte_carlo": monte_carlo(mse, cov),
    }


def _spread(values) -> dict:
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def partial_vs_no_pooling(mse: pd.DataFrame) -> list[dict]:
    """Per tau: MSE relative to no pooling of full Bayes, EB and complete pooling (mean, range over cells)."""
    out = []
    for tau, group in mse.groupby("tau", sort=True):
        entry = {"tau": float(tau)}
        for name in ("full_bayes", "empirical_bayes", "complete_pooling"):
            entry[name] = _spread(group.loc[group["estimator"] == name, "relative_to_no_pooling"])
        fb = group[group["estimator"] == "full_bayes"]
        entry["full_bayes_beats_no_pooling_cells"] = int((fb["relative_to_no_pooling"] < 1).sum())
        entry["cells"] = int(len(fb))
        out.append(entry)
    return out


def complete_pooling_wins(wide: pd.DataFrame) -> dict:
    """Cells where complete pooling has the lowest MSE, its MSE relative to full Bayes by tau, and its worst cell."""
    best = wide[wide[list(ESTIMATORS)].idxmin(axis=1) == "complete_pooling"]
    by_tau = []
    for tau, group in wide.groupby("tau", sort=True):
        ratio = group["complete_pooling"] / group["full_bayes"]
        by_tau.append(
            {
                "tau": float(tau),
                **_spread(ratio),
                "cells_where_complete_pooling_beats_full_bayes": int((ratio < 1).sum()),
                "cells": int(len(group)),
            }
        )
    out = {
        "lowest_mse_cells": [
            {
                "cell": _cell_name(r),
                "tau": float(r["tau"]),
                "design": r["design"],
                "n_sites": int(r["n_sites"]),
                "mse_complete_pooling": float(r["complete_pooling"]),
                "mse_full_bayes": float(r["full_bayes"]),
                "mse_no_pooling": float(r["no_pooling"]),
            }
            for _, r in best.iterrows()
        ],
        "relative_to_full_bayes_by_tau": by_tau,
        "worst_cell": None,
    }
    if len(wide):
        worst = (
            wide.assign(r=wide["complete_pooling"] / wide["no_pooling"]).sort_values("r").iloc[-1]
        )
        out["worst_cell"] = {"cell": _cell_name(worst), "relative_to_no_pooling": float(worst["r"])}
    return out


def empirical_vs_full_bayes(wide: pd.DataFrame) -> dict:
    """Ratio of EB's MSE to full Bayes' by tau and number of sites; cells where EB is better."""
    by_cell = []
    for (tau, j), group in wide.groupby(["tau", "n_sites"], sort=True):
        by_cell.append(
            {
                "tau": float(tau),
                "n_sites": int(j),
                **_spread(group["empirical_bayes"] / group["full_bayes"]),
                "cells": int(len(group)),
            }
        )
    return {
        "by_tau_and_n_sites": by_cell,
        "cells_where_eb_beats_full_bayes": int(
            (wide["empirical_bayes"] < wide["full_bayes"]).sum()
        ),
        "cells": int(len(wide)),
    }


def small_sites(by_size: pd.DataFrame) -> dict:
    """MSE relative to no pooling by site size, in the designs that mix site sizes."""
    mixed = by_size[by_size["n"].groupby([by_size[c] for c in CELL]).transform("nunique") > 1]
    rows = []
    for (tau, n), group in mixed.groupby(["tau", "n"], sort=True):
        rel = group.groupby("estimator")["relative_to_no_pooling"].mean()
        rows.append(
            {
                "tau": float(tau),
                "n": int(n),
                "full_bayes_relative_mse": float(rel["full_bayes"]),
                "empirical_bayes_relative_mse": float(rel["empirical_bayes"]),
                "cells": int((group["estimator"] == "full_bayes").sum()),
            }
        )

    def by_n(name):
        part = mixed[mixed["estimator"] == name].groupby("n")["relative_to_no_pooling"].mean()
        return {int(k): float(v) for k, v in part.items()}

    return {
        "designs": sorted(mixed["design"].unique()),
        "by_tau_and_n": rows,
        "full_bayes_by_n": by_n("full_bayes"),
        "empirical_bayes_by_n": by_n("empirical_bayes"),
    }


def _coverage_summary(part: pd.DataFrame) -> dict:
    return {
        "mean": float(part["coverage"].mean()),
        "min": float(part["coverage"].min()),
        "by_tau": {f"{t:g}": float(v) for t, v in part.groupby("tau")["coverage"].mean().items()},
        "by_n_sites": {
            int(j): float(v) for j, v in part.groupby("n_sites")["coverage"].mean().items()
        },
    }


def eb_uncertainty(cov: pd.DataFrame, tau_tab: pd.DataFrame, level: float) -> dict:
    """Coverage at ``level`` of EB and full Bayes; cells where EB falls short by more than 2 MC SE, worst first."""
    at = cov[cov["level"] == level]
    eb = at[at["method"] == "empirical_bayes"].merge(tau_tab[[*CELL, "eb_tau_zero_share"]], on=CELL)
    fb = at[at["method"] == "full_bayes"].set_index(CELL)["coverage"]
    short = eb[(eb["shortfall"] > 2 * eb["mc_se"].fillna(0)) & (eb["shortfall"] > 0)].sort_values(
        "coverage"
    )
    return {
        **{f"{m}_coverage": _coverage_summary(at[at["method"] == m]) for m in INTERVAL_METHODS},
        "eb_short_cells": [
            {
                "cell": _cell_name(r),
                "eb_coverage": float(r["coverage"]),
                "eb_mc_se": float(r["mc_se"]),
                "full_bayes_coverage": float(fb.loc[tuple(r[c] for c in CELL)]),
                "eb_tau_zero_share": float(r["eb_tau_zero_share"]),
            }
            for _, r in short.iterrows()
        ],
        "eb_tau_zero_share_by_tau": {
            f"{t:g}": float(v)
            for t, v in tau_tab.groupby("tau")["eb_tau_zero_share"].mean().items()
        },
        "cells": int(len(eb)),
    }


def tau_recovery(tau_tab: pd.DataFrame) -> dict:
    """Per tau: full Bayes' and EB's estimates of tau (mean, RMSE, 90% coverage); the fits' health over the grid."""
    by_tau = [
        {
            "tau": float(t),
            "fb_tau_mean": float(g["fb_tau_mean"].mean()),
            "eb_tau_mean": float(g["eb_tau_mean"].mean()),
            "fb_tau_coverage_0.9": float(g["fb_tau_coverage_0.9"].mean())
            if "fb_tau_coverage_0.9" in g
            else None,
            "fb_tau_rmse": float(np.sqrt((g["fb_tau_rmse"] ** 2).mean())),
            "eb_tau_rmse": float(np.sqrt((g["eb_tau_rmse"] ** 2).mean())),
        }
        for t, g in tau_tab.groupby("tau", sort=True)
    ]
    extremes = {
        key: float(tau_tab[key].max() if key.startswith("max") else tau_tab[key].min())
        for key in (
            "max_rhat",
            "min_ess_bulk",
            "max_rhat_theta",
            "min_ess_bulk_theta",
            "max_rhat_tau",
            "min_ess_bulk_tau",
        )
    }
    return {
        "by_tau": by_tau,
        "fits_with_divergences": int(tau_tab["fits_with_divergences"].sum()),
        "fits": int(tau_tab["replicates"].sum()),
        **extremes,
    }


def monte_carlo(mse: pd.DataFrame, cov: pd.DataFrame) -> dict:
    """Median and largest MC SE of the relative MSEs of full and empirical Bayes, and of the coverages."""
    rel = mse[mse["estimator"].isin(["full_bayes", "empirical_bayes"])]
    return {
        "max_relative_mse_mc_se": float(rel["relative_mc_se"].max()),
        "median_relative_mse_mc_se": float(rel["relative_mc_se"].median()),
        "max_coverage_mc_se": float(cov["mc_se"].max()),
        "median_coverage_mc_se": float(cov["mc_se"].median()),
    }
