"""Which refits a model's checking needs: the plans, folds and held-out rows of cross-validation.

PSIS-LOO is judged per observation against the sample-size threshold
``min(1 - 1/log10(S), 0.7)`` (Vehtari et al. 2024). Where it fails, `loo_plan` chooses the
remedy: one exact refit per observation for a few of them (ArviZ's ``reloo`` idea), K-fold
cross-validation when there are more. `loso_plan` makes the leave-one-site-out folds (grouped
K-fold), which answer the multi-site question PSIS-LOO does not: how well does a model predict a
*new* site? Where the fit estimated that itself (`hierpool.siteloo`), only the sites whose
Pareto k is too high are refitted. The plans are written by a checkpoint (`workflow/rules/checking.smk`); the refits
themselves run in `hierpool.crossval`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHOD_LABELS = {
    "psis": "PSIS",
    "moment_match": "moment matching",
    "exact": "exact refit",
    "kfold": "K-fold",
    "unresolved": "PSIS (unreliable)",
}


def read_pareto_k(path) -> tuple[np.ndarray, int]:
    """Pareto k per observation (after moment matching, where it ran) and the number of draws, from a fit's ``.loo.nc`` (`hierpool.loo.save_loo`)."""
    import xarray as xr

    with xr.open_dataset(path) as ds:
        k = ds["pareto_k"].values.copy()
        if "pareto_k_mm" in ds:
            matched = ds["pareto_k_mm"].values
            k = np.where(np.isnan(matched), k, matched)
        return k, int(ds.attrs["n_samples"])


def pareto_threshold(n_samples: int) -> float:
    """The Pareto-k above which PSIS is unreliable for ``n_samples`` draws: min(1 − 1/log10(S), 0.7)."""
    return float(min(1.0 - 1.0 / np.log10(max(n_samples, 11)), 0.7))


def high_k(pareto_k, n_samples: int) -> np.ndarray:
    """Observations whose Pareto k exceeds `pareto_threshold`, highest k first."""
    k = np.asarray(pareto_k, dtype=float).ravel()
    idx = np.flatnonzero(k > pareto_threshold(n_samples))
    return idx[np.argsort(-k[idx], kind="stable")]


def loo_plan(pareto_k, n_samples: int, max_refits: int, kfold_folds: int, seed: int) -> dict:
    """Which remedy the model's PSIS-LOO needs: none, exact refits, or K-fold.

    Parameters
    ----------
    pareto_k : array
        Pareto k per observation (from the fit's PSIS-LOO).
    n_samples : int
        Posterior draws (chains × draws).
    max_refits : int
        Exact refits for up to this many high-k observations (each a job).
    kfold_folds : int
        With more high-k observations than that: K-fold CV with this many folds (< 2: none).
    seed : int
        Seed of the fold assignment.

    Returns
    -------
    dict
        ``method`` (psis, exact, kfold, unresolved), ``units`` (the refit jobs' names),
        ``high`` (the observations), ``threshold``, ``folds``, ``seed``.
    """
    high = high_k(pareto_k, n_samples)
    plan = {
        "threshold": pareto_threshold(n_samples),
        "n_samples": int(n_samples),
        "high": [int(i) for i in high],
        "folds": 0,
        "seed": int(seed),
        "units": [],
    }
    if high.size == 0:
        return {**plan, "method": "psis"}
    if high.size <= max_refits:
        return {**plan, "method": "exact", "units": [f"obs{i}" for i in plan["high"]]}
    if kfold_folds >= 2:
        units = [f"fold{k}" for k in range(1, kfold_folds + 1)]
        return {**plan, "method": "kfold", "folds": int(kfold_folds), "units": units}
    return {**plan, "method": "unresolved"}


def batches(units: list[str], per_job: int) -> list[list[str]]:
    """The refit jobs: ``units`` in consecutive groups of at most ``per_job`` (one compiled model each)."""
    per_job = max(1, int(per_job))
    return [units[i : i + per_job] for i in range(0, len(units), per_job)]


def loso_plan(
    role: str, sites, max_folds: int, seed: int, estimate=None, n_samples: int | None = None
) -> dict:
    """Leave-one-site-out folds for a model of this role, or why it gets none.

    A model without a distribution of site effects (no pooling: a parameter per site) has
    nothing to say about a new site; with fewer than 2 sites or ``max_folds`` 0 there is no
    cross-validation to run. Where the fit itself estimated every site's held-out density
    (``estimate``: `hierpool.siteloo.site_loo`'s table, from ``n_samples`` draws), only the
    sites whose Pareto k is above `pareto_threshold` are refitted; otherwise every site is.
    """
    labels = sorted({str(s) for s in sites})
    plan = {"kind": "loso", "seed": int(seed), "n_sites": len(labels), "units": []}
    if role == "no_pooling":
        return {
            **plan,
            "method": "none",
            "reason": "no pooling estimates each site on its own: it cannot predict a new site",
        }
    if max_folds < 2 or len(labels) < 2:
        why = "loso_folds is below 2" if max_folds < 2 else "fewer than 2 sites"
        return {**plan, "method": "none", "reason": f"leave-one-site-out is off: {why}"}
    refitted = labels
    if estimate is not None and len(estimate):
        threshold = pareto_threshold(int(n_samples))
        k = estimate.set_index(estimate["site"].astype(str))["pareto_k"]
        if set(k.index) != set(labels):
            raise ValueError("the fit's leave-one-site-out estimate does not cover the sites")
        refitted = sorted(k.index[k > threshold])
        plan.update(method="psis", threshold=threshold, estimated=len(labels) - len(refitted))
        if not refitted:
            return {**plan, "folds": 0, "site_folds": {}, "refitted": []}
    else:
        plan.update(method="loso", estimated=0)
    folds = site_folds(refitted, max_folds, seed)
    n_folds = max(folds.values())
    return {
        **plan,
        "folds": n_folds,
        "site_folds": folds,
        "refitted": refitted,
        "units": [f"site{k}" for k in range(1, n_folds + 1)],
    }


def kfold_assignment(groups, folds: int, seed: int) -> np.ndarray:
    """Fold (1..``folds``) of every row, stratified by site: each site's rows spread over the folds."""
    groups = pd.Series(np.asarray(groups)).astype(str)
    rng = np.random.default_rng(seed)
    out = np.empty(len(groups), dtype=int)
    start = int(rng.integers(folds))
    for _, rows in groups.groupby(groups, sort=True).indices.items():
        rows = rng.permutation(rows)
        out[rows] = (start + np.arange(rows.size)) % folds + 1
        start = (start + rows.size) % folds
    return out


def site_folds(sites, max_folds: int, seed: int) -> dict[str, int]:
    """Leave-one-site-out folds: one per site, or, with more sites than ``max_folds``, sites grouped at random."""
    labels = sorted({str(s) for s in sites})
    if len(labels) <= max_folds:
        return {s: i + 1 for i, s in enumerate(labels)}
    order = np.random.default_rng(seed).permutation(len(labels))
    return {labels[j]: int(i % max_folds) + 1 for i, j in enumerate(order)}


def held_out_rows(unit: str, plan: dict, groups) -> np.ndarray:
    """Row numbers a refit leaves out: ``obs<i>``, ``fold<k>`` (K-fold) or ``site<k>`` (leave-one-site-out)."""
    groups = np.asarray(groups).astype(str)
    if unit.startswith("obs"):
        return np.array([int(unit[3:])])
    if unit.startswith("fold"):
        fold = kfold_assignment(groups, plan["folds"], plan["seed"])
        return np.flatnonzero(fold == int(unit[4:]))
    if unit.startswith("site"):
        chosen = {s for s, k in plan["site_folds"].items() if k == int(unit[4:])}
        return np.flatnonzero(np.isin(groups, list(chosen)))
    raise ValueError(f"unknown refit unit {unit!r} (obs<i>, fold<k> or site<k>)")
