"""The study's design: grid, seeds, site sizes, per-replicate settings and the simulated data."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

ESTIMATORS = ("no_pooling", "complete_pooling", "empirical_bayes", "full_bayes")
INTERVAL_METHODS = ("empirical_bayes", "full_bayes")
CELL = ["tau", "design", "n_sites"]
LABELS = {
    "no_pooling": "no pooling (site mean)",
    "complete_pooling": "complete pooling (grand mean)",
    "empirical_bayes": "empirical Bayes (plug-in)",
    "full_bayes": "full Bayes (Bambi, nutpie)",
}
PARTIAL_POOLING_FORMULA = "y ~ 1 + (1|site)"


def grid_frame(grid: dict) -> pd.DataFrame:
    """One row per (tau, design, n_sites, replicate) of a grid ``{tau, design, n_sites, replicates}``.

    The column order (tau, design, n_sites, replicate) is the folder order of the
    Paramspace pattern; tau is always float, so ``1`` and ``1.0`` name the same folder.
    """
    rows = [
        {"tau": float(tau), "design": str(design), "n_sites": int(n_sites), "replicate": int(rep)}
        for tau in grid["tau"]
        for design in grid["design"]
        for n_sites in grid["n_sites"]
        for rep in range(1, int(grid["replicates"]) + 1)
    ]
    frame = pd.DataFrame(rows, columns=["tau", "design", "n_sites", "replicate"])
    return frame.astype({"tau": float, "design": str, "n_sites": int, "replicate": int})


def derive_seed(base_seed: int, tau: float, design: str, n_sites: int, replicate: int) -> int:
    """A 32-bit seed from the base seed, the cell and the replicate (stable across runs and machines).

    A hash, not a counter: adding a tau value to the grid leaves every other cell's seed as it was.
    """
    key = f"{int(base_seed)}|tau={float(tau)!r}|design={design}|n_sites={int(n_sites)}|replicate={int(replicate)}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")


def site_sizes(design: int | list, n_sites: int) -> np.ndarray:
    """Observations per site: an integer gives every site that size, a list is cycled over the sites.

    ``[5, 50, 500]`` with 8 sites gives 5, 50, 500, 5, 50, 500, 5, 50.
    """
    sizes = (
        np.full(n_sites, int(design))
        if np.isscalar(design)
        else np.resize(np.asarray(design, dtype=int), n_sites)
    )
    if (sizes < 2).any():
        raise ValueError(
            "every site needs at least 2 observations (the pooled within-site variance needs them)"
        )
    return sizes


def study_settings(config: dict) -> dict:
    """The ``simulation_study`` block of a validated config, with the chosen grid resolved.

    Raises ConfigError (naming the key) when the grid or a design it names does not exist.
    The site-SD prior is the project's top-level ``site_sd_prior_scale``.
    """
    from hierpool.errors import ConfigError

    block = config["simulation_study"]
    name = block["grid"]
    if name not in block["grids"]:
        raise ConfigError(
            f"simulation_study.grid is {name!r}, but simulation_study.grids defines only {sorted(block['grids'])}."
        )
    grid = block["grids"][name]
    unknown = [d for d in grid["design"] if d not in block["designs"]]
    if unknown:
        raise ConfigError(
            f"simulation_study.grids.{name}.design names {unknown}, which are not in simulation_study.designs "
            f"(defined: {sorted(block['designs'])})."
        )
    return {
        **block,
        "grid_name": name,
        "grid": grid,
        "site_sd_prior_scale": config.get("site_sd_prior_scale", 1.0),
    }


def study_record(study: dict) -> dict:
    """The settings that define a run of the study (grid name and values, designs, model, sampler), for findings.json."""
    return {
        "name": study["grid_name"],
        **{k: study["grid"][k] for k in ("tau", "design", "n_sites", "replicates")},
        "designs": {d: study["designs"][d] for d in study["grid"]["design"]},
        "mu": study["mu"],
        "sigma": study["sigma"],
        "seed": study["seed"],
        "levels": list(study["levels"]),
        "sampler": dict(study["sampler"]),
        "site_sd_prior_scale": study["site_sd_prior_scale"],
        "formula": PARTIAL_POOLING_FORMULA,
    }


def replicate_setup(study: dict, instance: dict) -> dict:
    """Everything one replicate job needs (plain Python types, keys sorted): cell, seeds, site sizes, sampler."""
    tau, design = float(instance["tau"]), str(instance["design"])
    n_sites, replicate = int(instance["n_sites"]), int(instance["replicate"])
    seed = derive_seed(study["seed"], tau, design, n_sites, replicate)
    sampler = {
        **study["sampler"],
        "seed": derive_seed(study["seed"] + 1, tau, design, n_sites, replicate),
    }
    return {
        "tau": tau,
        "design": design,
        "n_sites": n_sites,
        "replicate": replicate,
        "seed": seed,
        "sizes": [int(n) for n in site_sizes(study["designs"][design], n_sites)],
        "mu": float(study["mu"]),
        "sigma": float(study["sigma"]),
        "levels": [float(x) for x in study["levels"]],
        "sampler": dict(sorted(sampler.items())),
        "site_sd_prior_scale": study["site_sd_prior_scale"],
    }


def simulate_replicate(
    tau: float, sizes, mu: float = 0.0, sigma: float = 1.0, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw one dataset: ``theta_j = mu + tau * z_j``, ``y_ij = theta_j + sigma * e_ij``.

    Returns ``(data, truth)``: data has one row per observation (``site``, ``y``), truth one
    row per site (``site``, ``n``, ``theta``).
    """
    from hierpool.simulate import site_labels

    sizes = np.asarray(sizes, dtype=int)
    rng = np.random.default_rng(seed)
    theta = mu + tau * rng.standard_normal(sizes.size)
    labels = np.asarray(site_labels(sizes.size))
    index = np.repeat(np.arange(sizes.size), sizes)
    y = theta[index] + sigma * rng.standard_normal(index.size)
    data = pd.DataFrame({"site": labels[index], "y": y})
    truth = pd.DataFrame({"site": labels, "n": sizes, "theta": theta})
    return data, truth
