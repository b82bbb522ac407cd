"""Convergence diagnostics per fit, and the convergence policy that judges them.

Per model: max R-hat, min bulk and tail ESS, divergences, BFMI per chain, fit wall time
(compilation included), sampling time, and bulk ESS per second of sampling, over every parameter in the posterior (site effects included).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ConvergencePolicy:
    """Thresholds a fit must meet; ``policy`` says whether a failure stops the run (`fail`) or is flagged (`warn`)."""

    policy: str = "warn"
    max_rhat: float = 1.01
    min_ess: float = 400
    max_divergences: int = 0


def _finite_extreme(dataset, reducer) -> float:
    values = (
        np.concatenate([np.ravel(dataset[v].values) for v in dataset.data_vars])
        if dataset.data_vars
        else np.array([])
    )
    values = values[np.isfinite(values)]
    return float(reducer(values)) if values.size else float("nan")


def fit_diagnostics(idata: az.InferenceData) -> dict:
    """Extract the numbers that say whether a fit can be trusted."""
    post = idata.posterior
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    rhat = az.rhat(post) if n_chains > 1 else None
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")
    diverging = (
        idata.sample_stats["diverging"].values
        if "diverging" in idata.sample_stats
        else np.zeros((n_chains, n_draws), bool)
    )
    try:
        bfmi = [float(b) for b in az.bfmi(idata)]
    except (KeyError, ValueError, TypeError):
        bfmi = []
    wall = float(post.attrs.get("hierpool_fit_wall_s", np.nan))
    sampling = float(post.attrs.get("sampling_time", wall))
    min_bulk = _finite_extreme(ess_bulk, np.min)
    worst = None
    if rhat is not None:
        per_var = {v: float(np.nanmax(rhat[v].values)) for v in rhat.data_vars}
        worst = max(per_var, key=lambda v: -np.inf if np.isnan(per_var[v]) else per_var[v])
    return {
        "chains": int(n_chains),
        "draws": int(n_draws),
        "max_rhat": _finite_extreme(rhat, np.max) if rhat is not None else float("nan"),
        "worst_rhat_parameter": worst,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": _finite_extreme(ess_tail, np.min),
        "divergences": int(np.asarray(diverging).sum()),
        "bfmi": bfmi,
        "min_bfmi": float(min(bfmi)) if bfmi else float("nan"),
        "wall_time_s": wall,
        "sampling_time_s": sampling,
        "ess_per_second": min_bulk / sampling
        if np.isfinite(sampling) and sampling > 0
        else float("nan"),
        "backend": post.attrs.get("hierpool_backend", "unknown"),
    }


def judge(diag: dict, policy: ConvergencePolicy) -> list[str]:
    """The problems of one fit under ``policy`` (an empty list means it passes)."""
    problems = []
    if diag["chains"] < 2:
        problems.append("only 1 chain: R-hat cannot be computed; run at least 2 (4 recommended)")
    elif not np.isfinite(diag["max_rhat"]) or diag["max_rhat"] > policy.max_rhat:
        problems.append(
            f"R-hat {diag['max_rhat']:.3f} > {policy.max_rhat} (worst: {diag['worst_rhat_parameter']})"
        )
    for kind in ("bulk", "tail"):
        value = diag[f"min_ess_{kind}"]
        if not np.isfinite(value) or value < policy.min_ess:
            problems.append(f"{kind} ESS {value:.0f} < {policy.min_ess:g}")
    if diag["divergences"] > policy.max_divergences:
        problems.append(
            f"{diag['divergences']} divergent transitions (allowed: {policy.max_divergences})"
        )
    if diag["bfmi"] and diag["min_bfmi"] < 0.3:
        problems.append(
            f"low BFMI {diag['min_bfmi']:.2f} (< 0.3): the sampler explores the energy distribution poorly"
        )
    return problems


def diagnostics_table(per_model: dict[str, dict], policy: ConvergencePolicy) -> pd.DataFrame:
    """One row per model: the numbers, whether it passes, and why not."""
    rows = []
    for model, diag in per_model.items():
        problems = judge(diag, policy)
        rows.append(
            {
                "model": model,
                "backend": diag["backend"],
                "chains": diag["chains"],
                "draws": diag["draws"],
                "max_rhat": diag["max_rhat"],
                "min_ess_bulk": diag["min_ess_bulk"],
                "min_ess_tail": diag["min_ess_tail"],
                "divergences": diag["divergences"],
                "min_bfmi": diag["min_bfmi"],
                "bfmi_per_chain": " ".join(f"{b:.2f}" for b in diag["bfmi"]),
                "wall_time_s": diag["wall_time_s"],
                "sampling_time_s": diag.get("sampling_time_s", diag["wall_time_s"]),
                "ess_per_second": diag["ess_per_second"],
                "passed": not problems,
                "problems": "; ".join(problems),
            }
        )
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame, policy: ConvergencePolicy) -> dict:
    """Machine-readable verdict for the dataset: which models failed, and what the policy does about it."""
    failed = table.loc[~table["passed"], ["model", "problems"]]
    return {
        "policy": policy.policy,
        "thresholds": {
            "max_rhat": policy.max_rhat,
            "min_ess": policy.min_ess,
            "max_divergences": policy.max_divergences,
        },
        "all_passed": bool(table["passed"].all()),
        "failed_models": {r.model: r.problems for r in failed.itertuples()},
        "passed_models": table.loc[table["passed"], "model"].tolist(),
    }
