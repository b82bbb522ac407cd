"""PSIS-LOO per model with Pareto-k diagnostics, the remedies' record, and the stacking comparison."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from hierpool.refitplan import METHOD_LABELS, pareto_threshold

# Classic Pareto-k bins (Vehtari et al. 2017): good, ok, bad, very bad. Whether PSIS is reliable
# for an observation is judged against the sample-size threshold (refitplan.pareto_threshold).
K_BINS = [(-np.inf, 0.5, "good"), (0.5, 0.7, "ok"), (0.7, 1.0, "bad"), (1.0, np.inf, "very bad")]


def loo(idata: az.InferenceData) -> az.ELPDData:
    return az.loo(idata, pointwise=True)


def pareto_k_counts(k: np.ndarray) -> dict[str, int]:
    return {label: int(((k > lo) & (k <= hi)).sum()) for lo, hi, label in K_BINS}


def _methods(result: az.ELPDData, methods) -> np.ndarray:
    """Each observation's method: as given, else PSIS where k is below the threshold, unresolved above."""
    if methods is not None:
        return np.asarray(methods, dtype=object)
    k = np.asarray(result.pareto_k, dtype=float).ravel()
    return np.where(k > pareto_threshold(int(result.n_samples)), "unresolved", "psis").astype(
        object
    )


def method_label(methods: np.ndarray) -> str:
    """How a model's elpd was computed, in words: ``PSIS``, ``PSIS + 2 exact refits``, ``10-fold CV`` …"""
    counts = pd.Series(methods).value_counts()
    if counts.get("kfold", 0) == len(methods):
        return "K-fold CV"
    parts = ["PSIS"]
    if counts.get("moment_match", 0):
        parts.append(f"{int(counts['moment_match'])} moment-matched")
    if counts.get("exact", 0):
        n = int(counts["exact"])
        parts.append(f"{n} exact refit{'s' if n > 1 else ''}")
    if counts.get("unresolved", 0):
        parts.append(f"{int(counts['unresolved'])} unreliable")
    return " + ".join(parts)


def loo_summary(model: str, psis: az.ELPDData, remedied=None, methods=None) -> dict:
    """One row of ``compare/loo.csv``: the final elpd, how it was computed, and PSIS's Pareto k."""
    final = remedied if remedied is not None else psis
    methods = _methods(psis, methods)
    k = np.asarray(psis.pareto_k).ravel()
    counts = pareto_k_counts(k)
    threshold = pareto_threshold(int(psis.n_samples))
    return {
        "model": model,
        "elpd_loo": float(final.elpd_loo),
        "se": float(final.se),
        "p_loo": float(final.p_loo),
        "elpd_method": method_label(methods),
        "elpd_psis": float(psis.elpd_loo),
        "n_obs": int(k.size),
        "k_good": counts["good"],
        "k_ok": counts["ok"],
        "k_bad": counts["bad"],
        "k_very_bad": counts["very bad"],
        "max_k": float(np.nanmax(k)),
        "k_threshold": threshold,
        "k_high": int((k > threshold).sum()),
        "n_moment_matched": int((methods == "moment_match").sum()),
        "n_exact": int((methods == "exact").sum()),
        "n_kfold": int((methods == "kfold").sum()),
        "loo_reliable": bool(not (methods == "unresolved").any()),
    }


def bad_observations(
    model: str,
    psis: az.ELPDData,
    data: pd.DataFrame,
    group: str,
    remedied=None,
    methods=None,
) -> pd.DataFrame:
    """Observations whose Pareto k is above the threshold, traced to the raw row and site, with their remedy."""
    k = np.asarray(psis.pareto_k).ravel()
    idx = np.flatnonzero(k > pareto_threshold(int(psis.n_samples)))
    methods = _methods(psis, methods)
    final = (remedied if remedied is not None else psis).loo_i.values
    out = pd.DataFrame(
        {
            "model": model,
            "observation": idx,
            "pareto_k": k[idx],
            "elpd_psis": np.asarray(psis.loo_i.values)[idx],
            "method": [METHOD_LABELS[m] for m in methods[idx]],
            "elpd": final[idx],
        }
    )
    out["site"] = data[group].astype(str).to_numpy()[idx]
    if "source_row" in data:
        out["source_row"] = data["source_row"].to_numpy()[idx]
    return out.sort_values("pareto_k", ascending=False).reset_index(drop=True)


def compare(loos: dict[str, az.ELPDData], reliable: dict[str, bool] | None = None) -> pd.DataFrame:
    """`az.compare` with stacking weights, plus whether each model's elpd is reliable (not silently ranked).

    ``reliable``: model -> every observation's elpd reliable (after the remedies); default: PSIS's
    own judgement, no Pareto k above the threshold.
    """
    table = az.compare(loos, ic="loo", method="stacking")
    table.index.name = "model"
    table = table.reset_index()
    if reliable is None:
        reliable = {m: not (_methods(r, None) == "unresolved").any() for m, r in loos.items()}
    table["loo_reliable"] = [bool(reliable[m]) for m in table["model"]]
    table["flag"] = np.where(
        table["loo_reliable"],
        "",
        "Pareto k above the threshold, not resolved by moment matching or refits: elpd unreliable for this model",
    )
    return table
