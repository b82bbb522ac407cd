"""Cross-validation by refitting: run the refits a plan asks for, and score them.

The plans (which observations, folds or sites a model's refits leave out) come from
`hierpool.refitplan`. `run_batch` runs one job's refits; `remedied_loo` puts exact refits and
K-fold folds in place of the observations PSIS-LOO could not judge; `loso_sites` puts the
leave-one-site-out refits beside the fit's own estimate for the other sites
(`hierpool.siteloo`), and `loso_summary` ranks the models on them.

A refit keeps every row in the design and leaves the held-out rows out of the likelihood
(`hierpool.pymc_model.build_pymc`, ``held_out``): the group levels and the priors are those
of the full fit, so a held-out site's effect is drawn from the population distribution, and
its rows' predictive density is that of a new site. Each refit is its own Snakemake job.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from hierpool.refitplan import held_out_rows


def refits(model, sampler: dict, held_out: dict, cores: int = 1):
    """Refit ``model`` once per entry of ``held_out`` (unit -> rows left out); yield ``(unit, InferenceData)``.

    With nutpie the model is compiled once (``weighted=True``: the rows likelihood weighted by
    `hierpool.pymc_model.CV_WEIGHTS`, or the sufficient statistics as data) and each refit
    only changes that data (`hierpool.pymc_model.refit_data`); with the PyMC sampler each
    refit builds its own model.
    """
    import nutpie

    from hierpool import fit as hpfit
    from hierpool import pymc_model, schema

    hpfit.choose_likelihood(model, sampler)
    shared = schema.filled("sampler", sampler)["backend"] == "nutpie"
    compiled = model_pm = None
    if shared:
        pymc_model.plan(model, weighted=True, held_out=None)
        model_pm = pymc_model.pymc_model(model)
        compiled = nutpie.compile_pymc_model(model_pm)
    for unit, rows in held_out.items():
        if shared:
            this = compiled.with_data(**pymc_model.refit_data(model_pm, rows))
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


def loso_sites(model: str, plan: dict, folds: list[dict], estimate=None) -> pd.DataFrame:
    """One model's ``checking/loso_sites.csv`` rows: the fit's estimate, refits where it fails.

    Parameters
    ----------
    model : str
    plan : dict
        Its `hierpool.refitplan.loso_plan`.
    folds : list of dict
        Its refit units (`run_batch`'s output).
    estimate : pandas.DataFrame, optional
        The fit's per-site estimate (`hierpool.siteloo.site_loo`), with its Pareto k.

    Returns
    -------
    pandas.DataFrame
        ``model, site, n, elpd, elpd_joint, elpd_per_obs, method`` (``PSIS`` or ``refit``) and
        ``pareto_k`` (the estimate's, also for the sites refitted because of it).
    """
    columns = ["model", "site", "n", "elpd", "elpd_joint", "elpd_per_obs", "method", "pareto_k"]
    parts = []
    if folds:
        parts.append(loso_table(folds, model).assign(method="refit"))
    if plan.get("method") == "psis":
        kept = estimate[~estimate["site"].astype(str).isin(plan["refitted"])]
        parts.append(kept.assign(model=model, method="PSIS", elpd_per_obs=kept["elpd"] / kept["n"]))
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat([p.drop(columns="pareto_k", errors="ignore") for p in parts])
    table["site"] = table["site"].astype(str)
    if estimate is not None and len(estimate):
        k = estimate.set_index(estimate["site"].astype(str))["pareto_k"]
        table["pareto_k"] = table["site"].map(k)
    table = table.reindex(columns=columns)
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
                "estimated_sites": plan.get("estimated", 0),
                "refitted_sites": len(plan.get("refitted", [])),
                **quality,
                "note": plan.get("reason", ""),
            }
        )
    out = pd.DataFrame(rows).merge(ranked, on="model", how="left")
    if "pareto_k" in sites and sites["pareto_k"].notna().any():
        out["max_pareto_k"] = out["model"].map(sites.groupby("model")["pareto_k"].max())
    order = [
        "model",
        "rank",
        "elpd_loso",
        "se",
        "elpd_diff",
        "dse",
        "n_sites",
        "estimated_sites",
        "refitted_sites",
        "max_pareto_k",
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
