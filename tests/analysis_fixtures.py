"""Small synthetic data and InferenceData for the analysis tests (variance, shrinkage, recovery, figures).

The posteriors are built from numpy arrays with the names and dims Bambi gives them, so
tests can choose values where the answer is known in closed form, without sampling.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hierpool.fitinfo import ATTRS

COLS = {"outcome": "scontrol", "predictor": "stress", "group": "site"}


def site_names(n_sites: int) -> list[str]:
    width = len(str(n_sites))
    return [f"s{i + 1:0{width}d}" for i in range(n_sites)]


def make_data(
    sizes,
    columns: dict = COLS,
    center: float = 3.0,
    intercepts=None,
    slopes=None,
    sigma: float = 0.5,
    x_sd: float = 0.7,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy data like ``load_clean`` returns: group categorical, predictor already centred by ``center``.

    Site j has y = intercepts[j] + slopes[j] * (x - center) + noise, x ~ N(center, x_sd).
    """
    rng = np.random.default_rng(seed)
    sizes = np.asarray(sizes, dtype=int)
    sites = site_names(len(sizes))
    intercepts = np.zeros(len(sizes)) if intercepts is None else np.asarray(intercepts, dtype=float)
    slopes = np.zeros(len(sizes)) if slopes is None else np.asarray(slopes, dtype=float)
    index = np.repeat(np.arange(len(sizes)), sizes)
    x_model = rng.normal(0.0, x_sd, index.size)
    y = intercepts[index] + slopes[index] * x_model + rng.normal(0.0, sigma, index.size)
    frame = pd.DataFrame(
        {
            columns["group"]: np.asarray(sites)[index],
            columns["predictor"]: x_model,
            columns["outcome"]: y,
        }
    )
    frame[columns["group"]] = pd.Categorical(frame[columns["group"]], categories=sites)
    frame["source_row"] = np.arange(1, len(frame) + 1)
    return frame


def _scalar(value, shape, rng, spread):
    if callable(value):
        return np.asarray(value(shape), dtype=float)
    arr = np.asarray(value, dtype=float)
    if arr.shape == shape:
        return arr
    return arr + spread * rng.standard_normal(shape)


def posterior_dataset(
    role: str,
    sites,
    columns: dict = COLS,
    chains: int = 2,
    draws: int = 100,
    seed: int = 0,
    spread: float = 0.0,
    **values,
) -> xr.Dataset:
    """A posterior with Bambi's variable names and dims for one of the four ladder roles, stamped with its formula.

    ``values`` sets parameters by role: intercept, slope, sigma, sd_intercept, sd_slope
    (scalars, or (chains, draws) arrays) and site_intercept, site_slope (per-site arrays
    of length len(sites), or (chains, draws, sites)): for no pooling these are the site
    lines themselves, for varying models the deviations from the population line.
    ``spread`` adds N(0, spread) noise to every value given as a scalar or per-site array.
    """
    rng = np.random.default_rng(seed)
    g, p = columns["group"], columns["predictor"]
    sites = list(sites)
    shape, site_shape = (chains, draws), (chains, draws, len(sites))
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    defaults = dict(
        intercept=2.0,
        slope=-0.4,
        sigma=0.5,
        sd_intercept=0.6,
        sd_slope=0.2,
        site_intercept=np.zeros(len(sites)),
        site_slope=np.zeros(len(sites)),
    )
    v = {**defaults, **values}

    def scalar(name):
        return (("chain", "draw"), _scalar(v[name], shape, rng, spread))

    def per_site(name, dim):
        arr = np.asarray(v[name], dtype=float)
        arr = (
            arr
            if arr.shape == site_shape
            else np.broadcast_to(arr, site_shape) + spread * rng.standard_normal(site_shape)
        )
        return (("chain", "draw", dim), arr)

    data = {"sigma": scalar("sigma")}
    if role == "no_pooling":
        coords.update({f"{g}_dim": sites, f"{g}:{p}_dim": sites})
        data[g] = per_site("site_intercept", f"{g}_dim")
        data[f"{g}:{p}"] = per_site("site_slope", f"{g}:{p}_dim")
    else:
        data["Intercept"] = scalar("intercept")
        data[p] = scalar("slope")
        if role in ("varying_intercepts", "varying_slopes"):
            coords[f"{g}__factor_dim"] = sites
            data[f"1|{g}_sigma"] = scalar("sd_intercept")
            data[f"1|{g}"] = per_site("site_intercept", f"{g}__factor_dim")
        if role == "varying_slopes":
            data[f"{p}|{g}_sigma"] = scalar("sd_slope")
            data[f"{p}|{g}"] = per_site("site_slope", f"{g}__factor_dim")
    post = xr.Dataset(data, coords=coords)
    post.attrs.update(
        {
            ATTRS["formula"]: ladder_formula(role, columns),
            ATTRS["family"]: "gaussian",
            ATTRS["link"]: "identity",
        }
    )
    return post


def ladder_formula(role: str, columns: dict = COLS) -> str:
    """The default config's formula for a ladder role, filled in with these columns."""
    y, x, g = columns["outcome"], columns["predictor"], columns["group"]
    return {
        "complete_pooling": f"{y} ~ {x}",
        "no_pooling": f"{y} ~ 0 + {g} + {g}:{x}",
        "varying_intercepts": f"{y} ~ {x} + (1|{g})",
        "varying_slopes": f"{y} ~ {x} + ({x}|{g})",
    }[role]


def make_fit(
    role: str,
    data: pd.DataFrame,
    columns: dict = COLS,
    chains: int = 2,
    draws: int = 100,
    seed: int = 0,
    spread: float = 0.05,
    predictive: bool = True,
    **values,
) -> az.InferenceData:
    """InferenceData with posterior, prior, (thinned) posterior predictive and observed data for ``data``."""
    sites = (
        list(data[columns["group"]].cat.categories)
        if hasattr(data[columns["group"]], "cat")
        else sorted(data[columns["group"]].unique())
    )
    post = posterior_dataset(role, sites, columns, chains, draws, seed, spread, **values)
    groups = {"posterior": post}
    prior_values = {k: v for k, v in values.items() if np.ndim(v) <= 1}
    groups["prior"] = posterior_dataset(role, sites, columns, 1, 40, seed + 1, 1.0, **prior_values)
    if predictive:
        from hierpool.posterior import mu_draws

        idata = az.InferenceData(posterior=post)
        mu = mu_draws(idata, data, columns)[:, : min(draws, 30)]
        sig = post["sigma"].values[:, : min(draws, 30), None]
        rng = np.random.default_rng(seed + 2)
        y_rep = mu + sig * rng.standard_normal(mu.shape)
        obs = np.arange(len(data))
        groups["posterior_predictive"] = xr.Dataset(
            {columns["outcome"]: (("chain", "draw", "__obs__"), y_rep)},
            coords={"chain": np.arange(chains), "draw": np.arange(y_rep.shape[1]), "__obs__": obs},
        )
        groups["observed_data"] = xr.Dataset(
            {columns["outcome"]: (("__obs__",), data[columns["outcome"]].to_numpy(float))},
            coords={"__obs__": obs},
        )
    return az.InferenceData(**groups)


def four_fits(data: pd.DataFrame, columns: dict = COLS, **kwargs) -> dict:
    """One fit of each ladder role for ``data`` with plausible values (site effects from the site means)."""
    y = data.groupby(data[columns["group"]].astype(str), sort=False, observed=True)[
        columns["outcome"]
    ].mean()
    sites = list(data[columns["group"]].cat.categories)
    means = y.reindex(sites).to_numpy()
    centre = float(np.mean(means))
    return {
        "complete_pooling": make_fit("complete_pooling", data, columns, intercept=centre, **kwargs),
        "no_pooling": make_fit(
            "no_pooling",
            data,
            columns,
            site_intercept=means,
            site_slope=np.full(len(sites), -0.4),
            **kwargs,
        ),
        "varying_intercepts": make_fit(
            "varying_intercepts",
            data,
            columns,
            intercept=centre,
            site_intercept=0.8 * (means - centre),
            **kwargs,
        ),
        "varying_slopes": make_fit(
            "varying_slopes",
            data,
            columns,
            intercept=centre,
            site_intercept=0.8 * (means - centre),
            **kwargs,
        ),
    }
