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


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def findings_markdown(f: dict) -> str:
    """The findings as prose; every number comes from the dict made by `findings`."""
    lines = [
        "# Simulation study: when does partial pooling win?",
        "",
        f"Grid `{f['grid']['name']}`: {f['cells']} cells (tau in {', '.join(f'{t:g}' for t in f['tau_values'])}; site-size designs "
        f"{', '.join(f['designs'])}; {' or '.join(str(j) for j in f['n_sites_values'])} sites), "
        f"{'/'.join(str(r) for r in f['replicates_per_cell'])} replicates per cell"
        + (f", residual SD {f['grid']['sigma']:g}. " if "sigma" in f["grid"] else ". ")
        + "MSE is the mean squared error of the site means over sites and replicates; "
        "\"relative MSE\" is an estimator's MSE divided by no pooling's in the same cell (below 1: better than no pooling). "
        + (f"Full Bayes: Bambi `{f['grid']['formula']}`, prior on tau HalfNormal({f['grid']['site_sd_prior_scale']:g} × sd(y)), "
           f"{f['grid']['sampler']['chains']} chains × {f['grid']['sampler']['draws']} draws ({f['grid']['sampler']['backend']}). "
           if "sampler" in f["grid"] and f["grid"].get("site_sd_prior_scale") is not None else "")
        + f"Monte Carlo SE of the relative MSE of full or empirical Bayes: median {f['monte_carlo']['median_relative_mse_mc_se']:.3f}, "
        f"at most {f['monte_carlo']['max_relative_mse_mc_se']:.3f}; of a coverage: median "
        f"{f['monte_carlo']['median_coverage_mc_se']:.3f}, at most {f['monte_carlo']['max_coverage_mc_se']:.3f}.",
        "",
        "## 1. Partial pooling against no pooling, across tau",
        "",
        "| tau | full Bayes / no pooling (mean, range over cells) | empirical Bayes / no pooling | complete pooling / no pooling | cells where full Bayes beats no pooling |",
        "|---:|---|---|---|---:|",
    ]
    for e in f["partial_vs_no_pooling"]:
        fmt = lambda d: f"{d['mean']:.2f} ({d['min']:.2f} to {d['max']:.2f})"  # noqa: E731
        lines.append(f"| {e['tau']:g} | {fmt(e['full_bayes'])} | {fmt(e['empirical_bayes'])} | {fmt(e['complete_pooling'])} | "
                     f"{e['full_bayes_beats_no_pooling_cells']} of {e['cells']} |")
    first, last = f["partial_vs_no_pooling"][0], f["partial_vs_no_pooling"][-1]
    change = lambda r: f"{_pct(abs(1 - r))} {'lower' if r < 1 else 'higher'}"  # noqa: E731
    trend = ("the gain shrinks as the sites differ more, because the data then ask for less shrinkage"
             if last["full_bayes"]["mean"] > first["full_bayes"]["mean"] else "the gain does not shrink with tau in this grid")
    lines += ["", f"Partial pooling (full Bayes) has {change(first['full_bayes']['mean'])} MSE than no pooling at tau = "
              f"{first['tau']:g} and {change(last['full_bayes']['mean'])} at tau = {last['tau']:g} (means over cells); {trend}.", ""]

    cp = f["complete_pooling"]
    lines += ["## 2. Where complete pooling wins", ""]
    if cp["lowest_mse_cells"]:
        lines.append(f"Complete pooling has the lowest MSE of the four estimators in {len(cp['lowest_mse_cells'])} cell(s): "
                     + "; ".join(f"{c['cell']} (MSE {c['mse_complete_pooling']:.4f} vs full Bayes {c['mse_full_bayes']:.4f}, "
                                 f"no pooling {c['mse_no_pooling']:.4f})" for c in cp["lowest_mse_cells"]) + ".")
    else:
        lines.append("Complete pooling has the lowest MSE in no cell of this grid.")
    lines += ["", "| tau | complete pooling / full Bayes (mean, range) | cells where complete pooling beats full Bayes |", "|---:|---|---:|"]
    lines += [f"| {e['tau']:g} | {e['mean']:.2f} ({e['min']:.2f} to {e['max']:.2f}) | {e['cells_where_complete_pooling_beats_full_bayes']} of {e['cells']} |"
              for e in cp["relative_to_full_bayes_by_tau"]]
    if cp["worst_cell"] and cp["worst_cell"]["relative_to_no_pooling"] > 1:
        lines += ["", f"Its worst cell is {cp['worst_cell']['cell']}, where its MSE is {cp['worst_cell']['relative_to_no_pooling']:.1f} "
                  "times that of no pooling: there, ignoring real differences between sites costs more than ignoring what the sites share."]
    lines.append("")

    small = f["small_sites"]
    lines += ["## 3. Small sites gain most", ""]
    if small["full_bayes_by_n"]:
        lines.append(f"In the mixed-size design(s) ({', '.join(small['designs'])}), full Bayes' MSE relative to no pooling, by site size "
                     "(mean over tau and number of sites): " + ", ".join(f"n = {n}: {v:.2f}" for n, v in small["full_bayes_by_n"].items())
                     + "; empirical Bayes: " + ", ".join(f"n = {n}: {v:.2f}" for n, v in small["empirical_bayes_by_n"].items()) + ".")
        top = [e for e in small["by_tau_and_n"] if e["tau"] == max(x["tau"] for x in small["by_tau_and_n"])]
        lo, hi = min(top, key=lambda e: e["n"]), max(top, key=lambda e: e["n"])
        lines += ["", f"Even at tau = {lo['tau']:g}, sites of n = {lo['n']} have {change(lo['full_bayes_relative_mse'])} MSE than with no pooling, "
                  f"sites of n = {hi['n']} {change(hi['full_bayes_relative_mse'])}: shrinkage is strongest where a site's own mean is noisiest.",
                  "", "| tau | n | full Bayes / no pooling | empirical Bayes / no pooling |", "|---:|---:|---:|---:|"]
        lines += [f"| {e['tau']:g} | {e['n']} | {e['full_bayes_relative_mse']:.2f} | {e['empirical_bayes_relative_mse']:.2f} |"
                  for e in small["by_tau_and_n"]]
    else:
        lines.append("No design in this grid mixes site sizes.")
    lines.append("")

    ef = f["empirical_vs_full_bayes"]
    lines += ["## 4. Empirical Bayes against full Bayes (point estimates)", "",
              f"Empirical Bayes has the lower MSE in {ef['cells_where_eb_beats_full_bayes']} of {ef['cells']} cells. "
              "Ratio of their MSEs (EB / full Bayes; above 1: full Bayes better), mean and range over site-size designs:", "",
              "| tau | J | EB / full Bayes |", "|---:|---:|---|"]
    lines += [f"| {e['tau']:g} | {e['n_sites']} | {e['mean']:.2f} ({e['min']:.2f} to {e['max']:.2f}) |" for e in ef["by_tau_and_n_sites"]]
    lines.append("")

    eb = f["eb_uncertainty"]
    lvl = _pct(f["level"])
    lines += [f"## 5. Where empirical Bayes underestimates uncertainty ({lvl} intervals)", "",
              f"Mean coverage over cells: full Bayes {_pct(eb['full_bayes_coverage']['mean'])} (lowest cell {_pct(eb['full_bayes_coverage']['min'])}), "
              f"empirical Bayes {_pct(eb['empirical_bayes_coverage']['mean'])} (lowest cell {_pct(eb['empirical_bayes_coverage']['min'])}).",
              "", "| tau | EB coverage | full Bayes coverage | share of replicates with EB tau^2 = 0 |", "|---:|---:|---:|---:|"]
    for t in eb["empirical_bayes_coverage"]["by_tau"]:
        lines.append(f"| {t} | {_pct(eb['empirical_bayes_coverage']['by_tau'][t])} | {_pct(eb['full_bayes_coverage']['by_tau'][t])} | "
                     f"{_pct(eb['eb_tau_zero_share_by_tau'][t])} |")
    by_j = eb["empirical_bayes_coverage"]["by_n_sites"]
    lines += ["", "By number of sites, EB coverage: " + ", ".join(f"J = {j}: {_pct(v)}" for j, v in by_j.items())
              + "; full Bayes: " + ", ".join(f"J = {j}: {_pct(v)}" for j, v in eb["full_bayes_coverage"]["by_n_sites"].items()) + "."]
    if eb["eb_short_cells"]:
        lines += ["", f"EB falls short of {lvl} by more than 2 Monte Carlo SE in {len(eb['eb_short_cells'])} of {eb['cells']} cells; the worst: "
                  + "; ".join(f"{c['cell']} ({_pct(c['eb_coverage'])} vs full Bayes {_pct(c['full_bayes_coverage'])}, tau^2 estimated as 0 in "
                              f"{_pct(c['eb_tau_zero_share'])} of replicates)" for c in eb["eb_short_cells"][:5]) + ". "
                  "The plug-in interval treats tau and sigma as known; when tau^2 is estimated as 0 it has zero width."]
    lines.append("")

    tr = f["tau_recovery"]
    lines += ["## 6. Recovery of tau (full Bayes)", "", "| tau | posterior mean (average) | EB estimate (average) | 90% interval covers tau | RMSE full Bayes | RMSE EB |",
              "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {e['tau']:g} | {e['fb_tau_mean']:.3f} | {e['eb_tau_mean']:.3f} | {_pct(e['fb_tau_coverage_0.9'])} | {e['fb_tau_rmse']:.3f} | {e['eb_tau_rmse']:.3f} |"
              for e in tr["by_tau"]]
    lines += ["", f"Fit health: {tr['fits_with_divergences']} of {tr['fits']} fits had divergent transitions. Site means: max R-hat "
              f"{tr['max_rhat_theta']:.3f}, min bulk ESS {tr['min_ess_bulk_theta']:.0f}; tau: max R-hat {tr['max_rhat_tau']:.3f}, "
              f"min bulk ESS {tr['min_ess_bulk_tau']:.0f} (Bambi's non-centred site effects mix slowly in tau when the sites are "
              "large and differ a lot; the site means, which every MSE and coverage above uses, are not affected).", ""]
    return "\n".join(lines)
