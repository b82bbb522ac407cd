"""Simulate multi-site data with known truth.

Each site j has its own intercept and slope drawn around population values,

    y_ij = b0_j + b1_j * x_ij + e_ij,   (b0_j, b1_j) ~ MVN((b0, b1), Sigma),   e_ij ~ N(0, sigma^2),

and the sites are unbalanced on purpose (a few with 2-5 rows, a few with 100+), as
in real multi-site studies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_COLUMNS = {"outcome": "scontrol", "predictor": "stress", "group": "site"}


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that defines a simulated dataset; the same spec and seed give the same bytes."""

    n_sites: int = 20
    site_size: Any = field(default_factory=lambda: {"min": 2, "max": 150})
    intercept: float = 3.5
    slope: float = -0.4
    sd_intercept: float = 0.5
    sd_slope: float = 0.2
    correlation: float = 0.0
    sigma: float = 0.6
    predictor_mean: float = 0.0
    predictor_sd: float = 1.0
    seed: int = 20261121

    @classmethod
    def from_config(cls, cfg: dict) -> "SimulationSpec":
        known = set(cls.__dataclass_fields__)
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown simulate keys: {sorted(unknown)}; known keys: {sorted(known)}")
        return cls(**cfg)


def site_sizes(spec: SimulationSpec, rng: np.random.Generator) -> np.ndarray:
    """Observations per site: fixed, an explicit list, or a geometric spread over [min, max].

    The geometric spread always contains the smallest and the largest size, so every
    dataset has tiny and large sites; the order over sites is shuffled.
    """
    size = spec.site_size
    if isinstance(size, (int, np.integer)):
        sizes = np.full(spec.n_sites, int(size))
    elif isinstance(size, (list, tuple)):
        if len(size) != spec.n_sites:
            raise ValueError(f"site_size lists {len(size)} sizes but n_sites is {spec.n_sites}")
        sizes = np.asarray(size, dtype=int)
    else:
        low, high = int(size["min"]), int(size["max"])
        if not 1 <= low <= high:
            raise ValueError(f"site_size needs 1 <= min <= max, got min={low}, max={high}")
        grid = np.exp(np.linspace(np.log(low), np.log(high), spec.n_sites))
        sizes = rng.permutation(np.round(grid).astype(int))
    if (sizes < 1).any():
        raise ValueError("every site needs at least 1 observation")
    return sizes


def site_labels(n_sites: int) -> list[str]:
    width = len(str(n_sites))
    return [f"site_{i + 1:0{width}d}" for i in range(n_sites)]


def site_effects(spec: SimulationSpec, rng: np.random.Generator) -> np.ndarray:
    """Draw (intercept, slope) per site from the bivariate normal around the population values."""
    cov = spec.correlation * spec.sd_intercept * spec.sd_slope
    sigma = np.array([[spec.sd_intercept**2, cov], [cov, spec.sd_slope**2]])
    mean = np.array([spec.intercept, spec.slope])
    try:
        factor = np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:  # a zero SD or |correlation| = 1: singular, but a valid spec
        rho = spec.correlation
        factor = np.array([[spec.sd_intercept, 0.0], [rho * spec.sd_slope, spec.sd_slope * np.sqrt(1 - rho**2)]])
    # Same draws as rng.multivariate_normal(mean, sigma, method="cholesky"), which fails on singular sigma.
    return mean + rng.standard_normal((spec.n_sites, 2)) @ factor.T


def simulate(spec: SimulationSpec, columns: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Return the simulated data (one row per observation) and the truth as a dict."""
    if spec.n_sites < 2:
        raise ValueError("n_sites must be at least 2 for a multi-site dataset")
    if not -1 <= spec.correlation <= 1:
        raise ValueError("correlation must lie in [-1, 1]")
    cols = {**DEFAULT_COLUMNS, **(columns or {})}
    rng = np.random.default_rng(spec.seed)
    sizes = site_sizes(spec, rng)
    effects = site_effects(spec, rng)
    labels = site_labels(spec.n_sites)

    site_index = np.repeat(np.arange(spec.n_sites), sizes)
    x = rng.normal(spec.predictor_mean, spec.predictor_sd, size=site_index.size)
    mu = effects[site_index, 0] + effects[site_index, 1] * x
    y = mu + rng.normal(0.0, spec.sigma, size=site_index.size)
    data = pd.DataFrame(
        {
            cols["group"]: np.asarray(labels)[site_index],
            cols["predictor"]: np.round(x, 6),
            cols["outcome"]: np.round(y, 6),
        }
    )
    truth = {
        "spec": asdict(spec),
        "columns": cols,
        "population": {
            "intercept": spec.intercept,
            "slope": spec.slope,
            "sd_intercept": spec.sd_intercept,
            "sd_slope": spec.sd_slope,
            "correlation": spec.correlation,
            "sigma": spec.sigma,
        },
        "sites": [
            {"site": label, "n": int(n), "intercept": float(b0), "slope": float(b1)}
            for label, n, (b0, b1) in zip(labels, sizes, effects)
        ],
    }
    return data, truth
