"""Simulate multi-site data with known truth.

Each site j has its own intercept and slope drawn around population values,

    y_ij = b0_j + b1_j * x_ij + e_ij,   (b0_j, b1_j) ~ MVN((b0, b1), Sigma),   e_ij ~ N(0, sigma^2),

and the sites are unbalanced on purpose (a few with 2-5 rows, a few with 100+), as
in real multi-site studies. With another ``family``, ``eta_ij = b0_j + b1_j * x_ij`` is the
linear predictor on the link scale (Bambi's default links) and the outcome is drawn from it:

    t                 y = eta + sigma * t_nu
    bernoulli         y ~ Bernoulli(invlogit(eta))                  (0/1)
    binomial          y ~ Binomial(trials, invlogit(eta))           (with a trials column)
    poisson           y ~ Poisson(exp(eta))
    negativebinomial  y ~ NB(mean exp(eta), alpha): variance mu + mu^2 / alpha
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hierpool import schema
from hierpool.families import DEFAULT_LINK as LINKS

DEFAULT_COLUMNS = {"outcome": "scontrol", "predictor": "stress", "group": "site"}
_DEFAULTS = schema.defaults("simulate")


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that defines a simulated dataset; the same spec and seed give the same bytes.

    The defaults are the config schema's ``simulate`` defaults (`hierpool.schema.defaults`).
    """

    # the design: how many sites, how many rows each, the seed
    n_sites: int = _DEFAULTS["n_sites"]
    site_size: Any = field(default_factory=lambda: copy.deepcopy(_DEFAULTS["site_size"]))
    seed: int = _DEFAULTS["seed"]
    # the truth on the link scale: the population line, the site SDs and their correlation
    intercept: float = _DEFAULTS["intercept"]
    slope: float = _DEFAULTS["slope"]
    sd_intercept: float = _DEFAULTS["sd_intercept"]
    sd_slope: float = _DEFAULTS["sd_slope"]
    correlation: float = _DEFAULTS["correlation"]
    # the predictor's distribution
    predictor_mean: float = _DEFAULTS["predictor_mean"]
    predictor_sd: float = _DEFAULTS["predictor_sd"]
    # the outcome: its family, and the parameters of the families that have them
    family: str = _DEFAULTS["family"]
    sigma: float = _DEFAULTS["sigma"]  # gaussian, t: residual SD
    trials: int = _DEFAULTS["trials"]  # binomial
    alpha: float = _DEFAULTS["alpha"]  # negativebinomial
    nu: float = _DEFAULTS["nu"]  # t

    @classmethod
    def from_config(cls, cfg: dict) -> SimulationSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(
                f"unknown simulate keys: {sorted(unknown)}; known keys: {sorted(known)}"
            )
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
        factor = np.array(
            [[spec.sd_intercept, 0.0], [rho * spec.sd_slope, spec.sd_slope * np.sqrt(1 - rho**2)]]
        )
    # Same draws as rng.multivariate_normal(mean, sigma, method="cholesky"), which fails on singular sigma.
    return mean + rng.standard_normal((spec.n_sites, 2)) @ factor.T


def _invlogit(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-eta))


def draw_outcome(spec: SimulationSpec, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The outcome for linear predictor ``eta`` (link scale), drawn from ``spec.family``.

    Gaussian draws exactly as before the other families existed (same calls, same bytes).
    """
    family = spec.family
    if family == "gaussian":
        return eta + rng.normal(0.0, spec.sigma, size=eta.size)
    if family == "t":
        return eta + spec.sigma * rng.standard_t(spec.nu, size=eta.size)
    if family == "bernoulli":
        return (rng.random(eta.size) < _invlogit(eta)).astype(np.int64)
    if family == "binomial":
        return rng.binomial(spec.trials, _invlogit(eta)).astype(np.int64)
    if family == "poisson":
        return rng.poisson(np.exp(eta)).astype(np.int64)
    # negative binomial with mean mu and variance mu + mu^2 / alpha: numpy's (n, p) = (alpha, alpha / (alpha + mu))
    mu = np.exp(eta)
    return rng.negative_binomial(spec.alpha, spec.alpha / (spec.alpha + mu)).astype(np.int64)


def _check_spec(spec: SimulationSpec) -> None:
    if spec.n_sites < 2:
        raise ValueError("n_sites must be at least 2 for a multi-site dataset")
    if not -1 <= spec.correlation <= 1:
        raise ValueError("correlation must lie in [-1, 1]")
    if spec.family not in LINKS:
        raise ValueError(f"unknown family {spec.family!r}; known: {sorted(LINKS)}")
    if spec.family == "binomial" and (int(spec.trials) != spec.trials or spec.trials < 1):
        raise ValueError(f"trials must be a whole number of at least 1, got {spec.trials}")
    if spec.family == "negativebinomial" and not spec.alpha > 0:
        raise ValueError(f"alpha must be positive, got {spec.alpha}")
    if spec.family == "t" and not spec.nu > 0:
        raise ValueError(f"nu must be positive, got {spec.nu}")


def population_truth(spec: SimulationSpec) -> dict:
    """The population parameters on the link scale; ``sigma``, ``nu``, ``alpha`` where the family has them."""
    population = {
        "intercept": spec.intercept,
        "slope": spec.slope,
        "sd_intercept": spec.sd_intercept,
        "sd_slope": spec.sd_slope,
        "correlation": spec.correlation,
    }
    if spec.family in ("gaussian", "t"):
        population["sigma"] = spec.sigma
    if spec.family == "t":
        population["nu"] = spec.nu
    if spec.family == "negativebinomial":
        population["alpha"] = spec.alpha
    return population


def simulate(spec: SimulationSpec, columns: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Return the simulated data (one row per observation) and the truth as a dict.

    Parameters
    ----------
    spec : SimulationSpec
        What to simulate, ``family`` included.
    columns : dict, optional
        Column names of the roles (outcome, predictor, group; ``trials`` for binomial, default
        ``"trials"``); missing roles take `DEFAULT_COLUMNS`.

    Returns
    -------
    tuple
        The data and the truth (spec, columns, family, link, population, sites).
    """
    _check_spec(spec)
    cols = {**DEFAULT_COLUMNS, **(columns or {})}
    if spec.family == "binomial":
        cols.setdefault("trials", "trials")
    rng = np.random.default_rng(spec.seed)
    sizes = site_sizes(spec, rng)
    effects = site_effects(spec, rng)
    labels = site_labels(spec.n_sites)

    site_index = np.repeat(np.arange(spec.n_sites), sizes)
    x = rng.normal(spec.predictor_mean, spec.predictor_sd, size=site_index.size)
    eta = effects[site_index, 0] + effects[site_index, 1] * x
    y = draw_outcome(spec, eta, rng)
    data = pd.DataFrame(
        {
            cols["group"]: np.asarray(labels)[site_index],
            cols["predictor"]: np.round(x, 6),
            cols["outcome"]: np.round(y, 6) if y.dtype.kind == "f" else y,
        }
    )
    if spec.family == "binomial":
        data[cols["trials"]] = np.full(site_index.size, int(spec.trials), dtype=np.int64)
    truth = {
        "spec": asdict(spec),
        "columns": cols,
        "family": spec.family,
        "link": LINKS[spec.family],
        "population": population_truth(spec),
        "sites": [
            {"site": label, "n": int(n), "intercept": float(b0), "slope": float(b1)}
            for label, n, (b0, b1) in zip(labels, sizes, effects)
        ],
    }
    return data, truth
