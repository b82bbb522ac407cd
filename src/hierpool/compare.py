"""PSIS-LOO per model with Pareto-k diagnostics, and the stacking comparison across models."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

# Classic Pareto-k bins (Vehtari et al. 2017): good, ok, bad, very bad.
K_BINS = [(-np.inf, 0.5, "good"), (0.5, 0.7, "ok"), (0.7, 1.0, "bad"), (1.0, np.inf, "very bad")]
K_BAD = 0.7


def loo(idata: az.InferenceData) -> az.ELPDData:
    return az.loo(idata, pointwise=True)


def pareto_k_counts(k: np.ndarray) -> dict[str, int]:
    return {label: int(((k > lo) & (k <= hi)).sum()) for lo, hi, label in K_BINS}


def loo_summary(model: str, result: az.ELPDData) -> dict:
    k = np.asarray(result.pareto_k).ravel()
    counts = pareto_k_counts(k)
    return {
        "model": model,
        "elpd_loo": float(result.elpd_loo),
        "se": float(result.se),
        "p_loo": float(result.p_loo),
        "n_obs": int(k.size),
        "k_good": counts["good"],
        "k_ok": counts["ok"],
        "k_bad": counts["bad"],
        "k_very_bad": counts["very bad"],
        "max_k": float(np.nanmax(k)),
        "k_threshold_arviz": float(getattr(result, "good_k", K_BAD)),
        "loo_reliable": bool(counts["bad"] + counts["very bad"] == 0),
    }


def bad_observations(
    model: str, result: az.ELPDData, data: pd.DataFrame, group: str
) -> pd.DataFrame:
    """Observations with Pareto k > 0.7, traced back to the raw file's row and their site."""
    k = np.asarray(result.pareto_k).ravel()
    idx = np.flatnonzero(k > K_BAD)
    out = pd.DataFrame({"model": model, "observation": idx, "pareto_k": k[idx]})
    out["site"] = data[group].astype(str).to_numpy()[idx]
    if "source_row" in data:
        out["source_row"] = data["source_row"].to_numpy()[idx]
    return out.sort_values("pareto_k", ascending=False).reset_index(drop=True)


def compare(loos: dict[str, az.ELPDData]) -> pd.DataFrame:
    """`az.compare` with stacking weights, plus each model's Pareto-k flag (not silently ranked)."""
    table = az.compare(loos, ic="loo", method="stacking")
    table.index.name = "model"
    table = table.reset_index()
    table["loo_reliable"] = [
        pareto_k_counts(np.asarray(loos[m].pareto_k).ravel())["bad"]
        + pareto_k_counts(np.asarray(loos[m].pareto_k).ravel())["very bad"]
        == 0
        for m in table["model"]
    ]
    table["flag"] = np.where(
        table["loo_reliable"], "", "Pareto k > 0.7: LOO estimate unreliable for this model"
    )
    return table
