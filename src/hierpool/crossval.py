"""Cross-validation by refitting: exact leave-one-out where PSIS fails, K-fold, leave-one-site-out.

PSIS-LOO is judged per observation against the sample-size threshold
``min(1 - 1/log10(S), 0.7)`` (Vehtari et al. 2024). Where it fails, the remedy is a refit
that leaves the rows out (`refit`): one exact refit per observation for a few of them
(ArviZ's ``reloo`` idea), K-fold cross-validation when there are more (`loo_plan`).
Leave-one-site-out (grouped K-fold, `site_folds`) answers the multi-site question PSIS-LOO
does not: how well does a model predict a *new* site?

A refit keeps every row in the design and leaves the held-out rows out of the likelihood
(`hierpool.pymc_model.build_pymc`, ``held_out``): the group levels and the priors are those
of the full fit, so a held-out site's effect is drawn from the population distribution, and
its rows' predictive density is that of a new site. Each refit is its own Snakemake job.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logsumexp

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


def loso_plan(role: str, sites, max_folds: int, seed: int) -> dict:
    """Leave-one-site-out folds for a model of this role, or why it gets none.

    A model without a distribution of site effects (no pooling: a parameter per site) has
    nothing to say about a new site; with fewer than 2 sites or ``max_folds`` 0 there is no
    cross-validation to run.
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
    folds = site_folds(labels, max_folds, seed)
    n_folds = max(folds.values())
    return {
        **plan,
        "method": "loso",
        "folds": n_folds,
        "site_folds": folds,
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


def refits(model, sampler: dict, held_out: dict, cores: int = 1):
    """Refit ``model`` once per entry of ``held_out`` (unit -> rows left out); yield ``(unit, InferenceData)``.

    With nutpie and the rows likelihood the model is compiled once, its likelihood weighted by
    `hierpool.pymc_model.CV_WEIGHTS`, and each refit only changes the weights; otherwise (a
    sufficient-statistics likelihood, the PyMC sampler) each refit builds its own model.
    """
    import nutpie

    from hierpool import fit as hpfit
    from hierpool import pymc_model

    hpfit.choose_likelihood(model, sampler)
    current = pymc_model.settings(model) or {}
    shared = (
        sampler.get("backend", "nutpie") == "nutpie" and current.get("likelihood", "rows") == "rows"
    )
    compiled = None
    if shared:
        pymc_model.plan(model, weighted=True, held_out=None)
        compiled = nutpie.compile_pymc_model(pymc_model.pymc_model(model))
    for unit, rows in held_out.items():
        if shared:
            weights = np.ones(len(model.data))
            weights[np.asarray(rows, dtype=int)] = 0.0
            this = compiled.with_data(**{pymc_model.CV_WEIGHTS: weights})
        else:
            pymc_model.plan(model, held_out=tuple(int(i) for i in rows))
            this = None
        idata = hpfit.sample(model, sampler, cores=cores, compiled=this)
        hpfit.drop_warmup(idata)
        hpfit.drop_per_observation(idata)
        yield unit, idata


def run_batch(
    model, sampler: dict, plan: dict, units: list[str], groups, cores: int = 1
) -> list[dict]:
    """Refit ``model`` for each unit of the plan; per unit the held-out rows' elpd and the refit's diagnostics.

    Returns
    -------
    list of dict
        ``{"unit", "rows", "elpd" (per row), "sites" (per site: n, joint elpd), "diagnostics"}``.
    """
    from hierpool.loo import OBS, log_likelihood_at

    groups = np.asarray(groups).astype(str)
    held = {unit: held_out_rows(unit, plan, groups) for unit in units}
    out = []
    for unit, idata in refits(model, sampler, held, cores=cores):
        rows = held[unit]
        log_lik = log_likelihood_at(model, idata.posterior, rows)
        values = log_lik.stack(sample=("chain", "draw")).transpose("sample", OBS).values
        pointwise, sites = held_out_elpd(values, groups[rows])
        out.append(
            {
                "unit": unit,
                "rows": [int(i) for i in rows],
                "elpd": [float(v) for v in pointwise],
                "sites": sites.to_dict("records"),
                "diagnostics": refit_diagnostics(idata),
            }
        )
    return out


def log_mean_exp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """``log(mean(exp(values)))`` along ``axis``, without overflow."""
    return logsumexp(values, axis=axis) - np.log(values.shape[axis])


def held_out_elpd(log_lik: np.ndarray, sites) -> tuple[np.ndarray, pd.DataFrame]:
    """Predictive densities of held-out rows from a refit's draws of their log-likelihood.

    Parameters
    ----------
    log_lik : array (draws, rows)
        Log-likelihood of each held-out row under each draw of the refit.
    sites : array (rows,)
        Each row's site.

    Returns
    -------
    (array, DataFrame)
        Per row, ``log mean_s p(y_i | θ_s)``. Per site: ``n``, ``elpd`` (the sum of its rows'
        values, as brms's grouped ``kfold`` and the loo package compute it) and ``elpd_joint``
        (``log mean_s Π_i p(y_i | θ_s)``, the density of the site's rows together: the
        stricter score, but a Monte Carlo estimate that gets noisy for large sites).
    """
    log_lik = np.asarray(log_lik, dtype=float)
    pointwise = log_mean_exp(log_lik, axis=0)
    sites = np.asarray(sites).astype(str)
    rows = []
    for site in pd.unique(sites):
        mask = sites == site
        rows.append(
            {
                "site": site,
                "n": int(mask.sum()),
                "elpd": float(pointwise[mask].sum()),
                "elpd_joint": float(log_mean_exp(log_lik[:, mask].sum(axis=1))),
            }
        )
    return pointwise, pd.DataFrame(rows, columns=["site", "n", "elpd", "elpd_joint"])


def refit_diagnostics(idata) -> dict:
    """Max R-hat, min bulk ESS and divergences of a refit (to judge it, as the fit is judged)."""
    from hierpool.diagnostics import fit_diagnostics

    diag = fit_diagnostics(idata)
    keys = ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")
    return {k: diag[k] for k in keys if k in diag}


def refit_quality(units: list[dict]) -> dict:
    """The worst diagnostics over a model's refits (NaN without refits): judge them as the fit is judged."""
    diags = [u["diagnostics"] for u in units]
    if not diags:
        return {
            "refits": 0,
            "refit_max_rhat": np.nan,
            "refit_min_ess_bulk": np.nan,
            "refit_divergences": 0,
        }
    return {
        "refits": len(diags),
        "refit_max_rhat": float(np.nanmax([d["max_rhat"] for d in diags])),
        "refit_min_ess_bulk": float(np.nanmin([d["min_ess_bulk"] for d in diags])),
        "refit_divergences": int(sum(d["divergences"] for d in diags)),
    }


def remedied_loo(psis, plan: dict, refits: list[dict], matched: dict | None = None):
    """The model's LOO with the high-k observations' PSIS values replaced by the remedies' ones.

    The chain: moment matching (in the fit job) for the observations it brings below the
    threshold, then the refits' exact (or K-fold) values for those left in ``plan["high"]``.

    Parameters
    ----------
    psis : arviz.ELPDData
        The fit's pointwise PSIS-LOO.
    plan : dict
        From `loo_plan` (on the Pareto k after moment matching).
    refits : list of dict
        One per unit in the plan: ``{"rows": [...], "elpd": [...]}`` (what the refit jobs write).
    matched : dict, optional
        ``{"rows", "elpd", "pareto_k"}`` of the moment matching (`hierpool.loo.load_moment_match`).

    Returns
    -------
    (arviz.ELPDData, numpy.ndarray)
        The LOO (``warning`` only if observations stay unreliable; ``p_loo`` = lppd − elpd) and
        the method of every observation (`METHOD_LABELS` keys).
    """
    import arviz as az

    from hierpool.loo import ELPD_INDEX

    loo_i = psis.loo_i.values.astype(float).copy()
    method = np.full(loo_i.size, "psis", dtype=object)
    if matched is not None and len(matched["rows"]):
        rows = np.asarray(matched["rows"], dtype=int)
        fixed = np.asarray(matched["pareto_k"], dtype=float) <= plan["threshold"]
        loo_i[rows[fixed]] = np.asarray(matched["elpd"], dtype=float)[fixed]
        method[rows[fixed]] = "moment_match"
    method[plan["high"]] = "unresolved"
    for refit_ in refits:
        rows = np.asarray(refit_["rows"], dtype=int)
        loo_i[rows] = refit_["elpd"]
        method[rows] = plan["method"]
    if plan["method"] == "kfold" and (method != "kfold").any():
        raise ValueError("the K-fold refits do not cover every observation")
    lppd = float(psis.elpd_loo) + float(psis.p_loo)
    elpd = float(loo_i.sum())
    values = dict(psis.items())
    values.update(
        elpd_loo=elpd,
        se=float((loo_i.size * np.var(loo_i)) ** 0.5),
        p_loo=lppd - elpd,
        warning=bool((method == "unresolved").any()),
        loo_i=psis.loo_i.copy(data=loo_i),
    )
    return az.ELPDData(data=[values[k] for k in ELPD_INDEX], index=ELPD_INDEX), method


def loso_table(folds: list[dict], model: str) -> pd.DataFrame:
    """Per-site leave-one-site-out results of one model from its fold jobs' outputs."""
    parts = [pd.DataFrame(f["sites"]) for f in folds]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    table.insert(0, "model", model)
    table["elpd_per_obs"] = table["elpd"] / table["n"]
    return table.sort_values("site", kind="stable").reset_index(drop=True)


def loso_compare(sites: pd.DataFrame) -> pd.DataFrame:
    """elpd for new sites per model (the sum over held-out sites), ranked, with SEs paired by site."""
    wide = sites.pivot(index="site", columns="model", values="elpd")
    n_sites = len(wide)
    totals = wide.sum().sort_values(ascending=False)
    best = totals.index[0]
    rows = []
    for rank, (model, total) in enumerate(totals.items()):
        diff = wide[model] - wide[best]
        rows.append(
            {
                "model": model,
                "rank": rank,
                "elpd_loso": float(total),
                "se": float((n_sites * wide[model].var(ddof=0)) ** 0.5),
                "elpd_diff": float(totals[best] - total),
                "dse": float((n_sites * diff.var(ddof=0)) ** 0.5),
                "n_sites": int(n_sites),
            }
        )
    return pd.DataFrame(rows)


def loso_summary(
    sites: pd.DataFrame, plans: dict[str, dict], refits: dict | None = None
) -> pd.DataFrame:
    """``checking/loso.csv``: every model, ranked by elpd for a new site where it has one, else why not."""
    ranked = loso_compare(sites) if len(sites) else pd.DataFrame(columns=["model"])
    rows = []
    for model, plan in plans.items():
        quality = refit_quality((refits or {}).get(model, []))
        rows.append(
            {
                "model": model,
                "folds": plan.get("folds", 0),
                **quality,
                "note": plan.get("reason", ""),
            }
        )
    out = pd.DataFrame(rows).merge(ranked, on="model", how="left")
    order = [
        "model",
        "rank",
        "elpd_loso",
        "se",
        "elpd_diff",
        "dse",
        "n_sites",
        "folds",
        "refit_max_rhat",
        "refit_min_ess_bulk",
        "refit_divergences",
        "note",
    ]
    out = out.reindex(columns=order)
    return out.sort_values(["rank", "model"], na_position="last", kind="stable").reset_index(
        drop=True
    )
