"""The numbers the report's summary states, what changed since the previous run, and the versions behind them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from hierpool import fitinfo, posterior, roles, summaries
from hierpool.report.outputs import DatasetOutputs

PACKAGES = (
    "hierpool",
    "bambi",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "numpy",
    "pandas",
    "xarray",
    "matplotlib",
    "snakemake",
    "nbclient",
    "nbconvert",
    "jupytext",
    "pypandoc_binary",
)


def population_slope(idata, columns: dict, scale, data: pd.DataFrame) -> dict:
    """Posterior mean and 95% HDI of the population slope, per unit of the original predictor (link scale)."""
    _, slope = posterior.population_line(idata, columns, scale, data=data)
    draws = np.asarray(slope).ravel()
    low, high = az.hdi(draws, hdi_prob=summaries.HDI_PROB)
    return {
        "mean": float(draws.mean()),
        "hdi": [float(low), float(high)],
        "link": fitinfo.model_info(idata)["link"],
    }


def headline(
    outputs: DatasetOutputs,
    dataset: str,
    fits: dict | None = None,
    columns: dict | None = None,
    data: pd.DataFrame | None = None,
) -> dict:
    """The numbers the report's summary states, computed from the pipeline's outputs.

    ``fits`` (model -> InferenceData), ``columns`` and ``data`` give the population slope of the
    best-ranked partial-pooling model; roles come from each fit's formula (hierpool.roles).
    """
    from hierpool.fitinfo import PredictorScale

    cleaning = outputs.read_json("data", "cleaning_summary.json")
    compare = outputs.read_csv("compare", "compare.csv").sort_values("rank")
    loo_table = outputs.read_csv("compare", "loo.csv")
    methods = (
        {}
        if loo_table is None or "elpd_method" not in loo_table
        else dict(zip(loo_table["model"], loo_table["elpd_method"]))
    )
    verdict = outputs.read_json("diagnostics", "convergence.json")
    variance = outputs.read_json("variance", "variance_summary.json") or {}
    predictor = cleaning["predictor"]
    ranking = compare["model"].tolist()
    best = compare.iloc[0]
    runner = compare.iloc[1] if len(compare) > 1 else None
    fits = fits or {}
    role = {m: fitinfo.role(i, columns) for m, i in fits.items()}
    slope_model = next((m for m in ranking if role.get(m) in roles.PARTIAL), None)
    slope = None
    if slope_model and columns.get("predictor"):
        slope = {
            "model": slope_model,
            **population_slope(
                fits[slope_model], columns, PredictorScale.from_summary(predictor), data
            ),
        }
    # the first varying-intercepts model in the config's order (the JSON's key order is alphabetical)
    icc_model = next(
        (m for m in fits if role[m] == "varying_intercepts" and m in (variance.get("icc") or {})),
        None,
    )
    icc = (variance.get("icc") or {}).get(icc_model)
    return {
        "dataset": dataset,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "input_sha256": cleaning.get("sha256"),
        "n_obs": cleaning["rows_out"],
        "n_sites": cleaning["sites_kept"],
        "sites": cleaning["site_counts"],
        "loo": {
            "ranking": ranking,
            "best": best["model"],
            "best_weight": float(best["weight"]),
            "runner_up": None if runner is None else runner["model"],
            "elpd_diff": None if runner is None else float(runner["elpd_diff"]),
            "dse": None if runner is None else float(runner["dse"]),
            "unreliable": compare.loc[~compare["loo_reliable"].astype(bool), "model"].tolist(),
            # how each model's elpd was computed: PSIS, PSIS + exact refits, K-fold CV
            "methods": methods,
        },
        "icc": None
        if icc is None
        else {"model": icc_model, "mean": icc["mean"], "hdi": icc["hdi"]},
        "slope": slope,
        "convergence": {"policy": verdict["policy"], "failed": verdict["failed_models"]},
    }


def fingerprint(entry: dict) -> str:
    """What identifies a run's inputs: the data's checksum and the sites and counts it produced."""
    key = json.dumps(
        {
            "sha": entry.get("input_sha256"),
            "sites": entry.get("sites"),
            "ranking": entry["loo"]["ranking"],
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def previous_headline(history: Path, current: dict) -> dict | None:
    """The most recent earlier run whose inputs differ from the current one (history is JSON lines)."""
    if not history.is_file():
        return None
    now = fingerprint(current)
    entries = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    for entry in reversed(entries):
        if fingerprint(entry) != now:
            return entry
    return None


def append_history(history: Path, current: dict) -> None:
    """Remember this run, unless the last remembered run had the same inputs."""
    history.parent.mkdir(parents=True, exist_ok=True)
    lines = history.read_text().splitlines() if history.is_file() else []
    if lines and fingerprint(json.loads(lines[-1])) == fingerprint(current):
        lines[-1] = json.dumps(current, sort_keys=True)
    else:
        lines.append(json.dumps(current, sort_keys=True))
    history.write_text("\n".join(lines) + "\n")


def changes(previous: dict | None, current: dict) -> dict:
    """What moved between the previous run and this one: sites, observations, headline numbers."""
    if previous is None:
        return {"first_run": True}
    before, after = previous.get("sites", {}), current.get("sites", {})
    grown = {
        s: [before[s], after[s]] for s in sorted(set(before) & set(after)) if before[s] != after[s]
    }

    def moved(key):
        a, b = previous.get(key), current.get(key)
        if not a or not b:
            return None
        return {"before": a["mean"], "after": b["mean"], "change": b["mean"] - a["mean"]}

    return {
        "first_run": False,
        "previous_created": previous.get("created"),
        "sites_added": sorted(set(after) - set(before)),
        "sites_removed": sorted(set(before) - set(after)),
        "sites_resized": grown,
        "observations_before": previous.get("n_obs"),
        "observations_after": current.get("n_obs"),
        "observations_added": current.get("n_obs", 0) - previous.get("n_obs", 0),
        "slope": moved("slope"),
        "icc": moved("icc"),
        "ranking_before": previous["loo"]["ranking"],
        "ranking_after": current["loo"]["ranking"],
        "ranking_changed": previous["loo"]["ranking"] != current["loo"]["ranking"],
    }


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=20
        )
        commit = result.stdout.strip()
        if result.returncode != 0 or not commit:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
