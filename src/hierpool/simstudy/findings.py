"""The study's answers as numbers (findings.json), computed from the summary tables."""

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
    mse, by_size, cov, tau_tab = tables["mse"], tables["mse_by_size"], tables["coverage"], tables["tau"]
    out: dict = {"grid": grid if isinstance(grid, dict) else {"name": grid}, "cells": int(len(tau_tab)), "replicates_per_cell": sorted({int(r) for r in tau_tab["replicates"]}),
                 "tau_values": sorted(float(t) for t in tau_tab["tau"].unique()), "designs": sorted(tau_tab["design"].unique()),
                 "n_sites_values": sorted(int(j) for j in tau_tab["n_sites"].unique()), "level": level}

    pp = []
    for tau, group in mse.groupby("tau", sort=True):
        entry = {"tau": float(tau)}
        for name in ("full_bayes", "empirical_bayes", "complete_pooling"):
            rel = group.loc[group["estimator"] == name, "relative_to_no_pooling"]
            entry[name] = {"mean": float(rel.mean()), "min": float(rel.min()), "max": float(rel.max())}
        fb = group[group["estimator"] == "full_bayes"]
        entry["full_bayes_beats_no_pooling_cells"] = int((fb["relative_to_no_pooling"] < 1).sum())
        entry["cells"] = int(len(fb))
        pp.append(entry)
    out["partial_vs_no_pooling"] = pp

    wide = mse.pivot_table(index=CELL, columns="estimator", values="mse").reset_index()
    cp_best = wide[wide[list(ESTIMATORS)].idxmin(axis=1) == "complete_pooling"]
    cp_vs_fb = []
    for tau, group in wide.groupby("tau", sort=True):
        ratio = group["complete_pooling"] / group["full_bayes"]
        cp_vs_fb.append({"tau": float(tau), "mean": float(ratio.mean()), "min": float(ratio.min()), "max": float(ratio.max()),
                         "cells_where_complete_pooling_beats_full_bayes": int((ratio < 1).sum()), "cells": int(len(group))})
    out["complete_pooling"] = {
        "lowest_mse_cells": [{"cell": _cell_name(r), "tau": float(r["tau"]), "design": r["design"], "n_sites": int(r["n_sites"]),
                              "mse_complete_pooling": float(r["complete_pooling"]), "mse_full_bayes": float(r["full_bayes"]),
                              "mse_no_pooling": float(r["no_pooling"])} for _, r in cp_best.iterrows()],
        "relative_to_full_bayes_by_tau": cp_vs_fb,
        "worst_cell": None,
    }
    if len(wide):
        worst = wide.assign(r=wide["complete_pooling"] / wide["no_pooling"]).sort_values("r").iloc[-1]
        out["complete_pooling"]["worst_cell"] = {"cell": _cell_name(worst), "relative_to_no_pooling": float(worst["r"])}

    eb_fb = []
    for (tau, j), group in wide.groupby(["tau", "n_sites"], sort=True):
        ratio = group["empirical_bayes"] / group["full_bayes"]
        eb_fb.append({"tau": float(tau), "n_sites": int(j), "mean": float(ratio.mean()), "min": float(ratio.min()),
                      "max": float(ratio.max()), "cells": int(len(group))})
    out["empirical_vs_full_bayes"] = {"by_tau_and_n_sites": eb_fb,
                                      "cells_where_eb_beats_full_bayes": int((wide["empirical_bayes"] < wide["full_bayes"]).sum()),
                                      "cells": int(len(wide))}

    mixed = by_size[by_size["n"].groupby([by_size[c] for c in CELL]).transform("nunique") > 1]
    small = []
    for (tau, n), group in mixed.groupby(["tau", "n"], sort=True):
        rel = group.groupby("estimator")["relative_to_no_pooling"].mean()
        small.append({"tau": float(tau), "n": int(n), "full_bayes_relative_mse": float(rel["full_bayes"]),
                      "empirical_bayes_relative_mse": float(rel["empirical_bayes"]),
                      "cells": int((group["estimator"] == "full_bayes").sum())})
    eb_small = mixed[mixed["estimator"] == "empirical_bayes"].groupby("n")["relative_to_no_pooling"].mean()
    fb_small = mixed[mixed["estimator"] == "full_bayes"].groupby("n")["relative_to_no_pooling"].mean()
    out["small_sites"] = {"designs": sorted(mixed["design"].unique()), "by_tau_and_n": small,
                          "full_bayes_by_n": {int(k): float(v) for k, v in fb_small.items()},
                          "empirical_bayes_by_n": {int(k): float(v) for k, v in eb_small.items()}}

    at = cov[cov["level"] == level]
    per_method = {}
    for method in INTERVAL_METHODS:
        part = at[at["method"] == method]
        per_method[method] = {"mean": float(part["coverage"].mean()), "min": float(part["coverage"].min()),
                              "by_tau": {f"{t:g}": float(v) for t, v in part.groupby("tau")["coverage"].mean().items()},
                              "by_n_sites": {int(j): float(v) for j, v in part.groupby("n_sites")["coverage"].mean().items()}}
    eb = at[at["method"] == "empirical_bayes"].merge(tau_tab[[*CELL, "eb_tau_zero_share"]], on=CELL)
    fb = at[at["method"] == "full_bayes"].set_index(CELL)["coverage"]
    short = eb[(eb["shortfall"] > 2 * eb["mc_se"].fillna(0)) & (eb["shortfall"] > 0)].sort_values("coverage")
    out["eb_uncertainty"] = {
        **{f"{m}_coverage": v for m, v in per_method.items()},
        "eb_short_cells": [{"cell": _cell_name(r), "eb_coverage": float(r["coverage"]), "eb_mc_se": float(r["mc_se"]),
                            "full_bayes_coverage": float(fb.loc[tuple(r[c] for c in CELL)]),
                            "eb_tau_zero_share": float(r["eb_tau_zero_share"])} for _, r in short.iterrows()],
        "eb_tau_zero_share_by_tau": {f"{t:g}": float(v) for t, v in tau_tab.groupby("tau")["eb_tau_zero_share"].mean().items()},
        "cells": int(len(eb)),
    }

    out["tau_recovery"] = {
        "by_tau": [{"tau": float(t), "fb_tau_mean": float(g["fb_tau_mean"].mean()), "eb_tau_mean": float(g["eb_tau_mean"].mean()),
                    "fb_tau_coverage_0.9": float(g["fb_tau_coverage_0.9"].mean()) if "fb_tau_coverage_0.9" in g else None,
                    "fb_tau_rmse": float(np.sqrt((g["fb_tau_rmse"] ** 2).mean())), "eb_tau_rmse": float(np.sqrt((g["eb_tau_rmse"] ** 2).mean()))}
                   for t, g in tau_tab.groupby("tau", sort=True)],
        "fits_with_divergences": int(tau_tab["fits_with_divergences"].sum()),
        "fits": int(tau_tab["replicates"].sum()),
        "max_rhat": float(tau_tab["max_rhat"].max()),
        "min_ess_bulk": float(tau_tab["min_ess_bulk"].min()),
        "max_rhat_theta": float(tau_tab["max_rhat_theta"].max()),
        "min_ess_bulk_theta": float(tau_tab["min_ess_bulk_theta"].min()),
        "max_rhat_tau": float(tau_tab["max_rhat_tau"].max()),
        "min_ess_bulk_tau": float(tau_tab["min_ess_bulk_tau"].min()),
    }
    rel = mse[mse["estimator"].isin(["full_bayes", "empirical_bayes"])]
    out["monte_carlo"] = {"max_relative_mse_mc_se": float(rel["relative_mc_se"].max()),
                          "median_relative_mse_mc_se": float(rel["relative_mc_se"].median()),
                          "max_coverage_mc_se": float(cov["mc_se"].max()), "median_coverage_mc_se": float(cov["mc_se"].median())}
    return out
