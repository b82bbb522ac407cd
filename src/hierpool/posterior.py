"""Site lines, site SDs and the linear predictor of any fitted model, as posterior draws.

Bambi names parameters after the dataset's columns (group ``site``, predictor ``stress``):

=====================  ==========================================  ===========================
role (hierpool.roles)  site intercepts                             site slopes
=====================  ==========================================  ===========================
complete pooling       ``Intercept`` (one for all)                 ``stress`` (one for all)
no pooling             ``site`` (dim ``site_dim``)                 ``site:stress``
varying intercepts     ``Intercept`` + ``1|site``                  ``stress`` (one for all)
varying slopes         ``Intercept`` + ``1|site``                  ``stress`` + ``stress|site``
=====================  ==========================================  ===========================

Every function here works from the posterior arrays (no model rebuild, no sampling) and
returns xarray draws with dims ``(chain, draw[, site])``, so later stages never deal with
Bambi's dimension names. A model's role is read from its formula (stored in the fit's
attributes by the fit job, see `hierpool.fitinfo.stamp`), not from its name in the config, so a renamed
model still works.

Covariates. Any other common term (a covariate such as ``age``, a categorical ``C(sex)``,
a site-level predictor such as ``log(Uppm)``, an interaction ``stress:age``) is evaluated
with the formula's own design matrix on the cleaned data and added to each site's line at
that site's own average of the term (for a site-level predictor: the site's value; for a
categorical covariate: the site's mix of levels), and to the population line at the
average over all rows. Terms that interact with the predictor move the slope the same way.
Further grouping factors (``(1|site:class)``, ``(1|rater)``) are held at zero (a typical
member) in the site lines and included in the linear predictor of each observation.

Scale. Every value here is on the model's link scale (identity for Gaussian and t,
logit for Bernoulli and binomial, log for Poisson and negative binomial).

Scales. The model sees ``x = (x_orig - center) / scale``. An *intercept* here is always
the line's value at model ``x = 0``, i.e. at the predictor's centre (its grand mean when
the data were centred, 0 when not). A *slope* is returned per unit of the ORIGINAL
predictor (model slope / scale), so slopes compare directly with the raw data and truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from hierpool import design, roles
from hierpool.fitinfo import PredictorScale, names, posterior_dataset, structure

SAMPLE_DIMS = ("chain", "draw")


def _clean_label(label, columns: dict) -> str:
    """Site label as in the data: drop any ``:predictor`` or ``group[...]`` decoration Bambi may add."""
    text = str(label)
    g, p = columns["group"], columns.get("predictor")
    if p and text.endswith(f":{p}"):
        text = text[: -len(p) - 1]
    if text.startswith(f"{g}[") and text.endswith("]"):
        text = text[len(g) + 1 : -1]
    return text


def site_draws(post: xr.Dataset, var: str, columns: dict) -> xr.DataArray:
    """A per-site variable with its site dim renamed to ``site`` and plain string labels."""
    da = post[var]
    extra = [d for d in da.dims if d not in SAMPLE_DIMS]
    if len(extra) != 1:
        raise ValueError(f"{var!r} should have exactly one dim besides chain/draw, has {da.dims}")
    da = da.rename({extra[0]: "site"})
    return da.assign_coords(site=[_clean_label(s, columns) for s in da["site"].values])


def scalar_draws(post: xr.Dataset, var: str) -> xr.DataArray:
    da = post[var]
    if set(da.dims) != set(SAMPLE_DIMS):
        raise ValueError(f"{var!r} should have dims (chain, draw), has {da.dims}")
    return da


def zero(post: xr.Dataset) -> xr.DataArray:
    """Zero draws (chain, draw): the intercept of a model without one."""
    return xr.DataArray(
        np.zeros((post.sizes["chain"], post.sizes["draw"])),
        dims=SAMPLE_DIMS,
        coords={d: post[d].values for d in SAMPLE_DIMS},
    )


def _covariate_parts(
    post: xr.Dataset, struct: roles.ModelRoles, data, columns: dict, by_site: bool
):
    """`hierpool.design.covariate_sums` as draws with dims (chain, draw[, site]); None without covariates."""
    sums = design.covariate_sums(post, struct, data, columns, by_site)
    if sums is None:
        return None
    intercept, slope, sites = sums
    if sites is None:
        return xr.DataArray(intercept, dims=SAMPLE_DIMS), xr.DataArray(slope, dims=SAMPLE_DIMS)
    dims, coords = (*SAMPLE_DIMS, "site"), {"site": sites}
    return xr.DataArray(intercept, dims=dims, coords=coords), xr.DataArray(
        slope, dims=dims, coords=coords
    )


def _base_lines(post: xr.Dataset, columns: dict, struct: roles.ModelRoles):
    """Intercept and slope from the intercept, predictor and main-group terms (covariates excluded)."""
    n = names(columns)
    if struct.role == "no_pooling":
        intercept = (
            site_draws(post, n["np_intercept"], columns) if n["np_intercept"] in post else None
        )
        slope = site_draws(post, n["np_slope"], columns) if n["np_slope"] in post else None
        intercept = xr.zeros_like(slope) if intercept is None else intercept
        slope = xr.zeros_like(intercept) if slope is None else slope.reindex(site=intercept["site"])
        if n["intercept"] in post:
            intercept = intercept + scalar_draws(post, n["intercept"])
        if n["slope"] in post and n["slope"] in struct.common:
            slope = slope + scalar_draws(post, n["slope"])
        return intercept, slope
    intercept = scalar_draws(post, n["intercept"]) if n["intercept"] in post else zero(post)
    slope = (
        scalar_draws(post, n["slope"])
        if n["slope"] and n["slope"] in post
        else xr.zeros_like(intercept)
    )
    if n["site_intercept"] in post:
        intercept = intercept + site_draws(post, n["site_intercept"], columns)
    if n["slope"] and n["site_slope"] in post:
        slope = slope + site_draws(post, n["site_slope"], columns)
    return intercept, slope


def site_lines(
    idata,
    columns: dict,
    scale: PredictorScale = PredictorScale(),
    sites=None,
    data: pd.DataFrame | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Per-site (intercept at the centre, slope per original unit) draws, dims (chain, draw, site).

    Complete pooling has one line for all sites; pass ``sites`` to broadcast it over them.
    A model with covariates needs ``data`` (the cleaned data it was fitted to): they are
    held at each site's own average (module docstring).
    """
    post = posterior_dataset(idata)
    struct = structure(post, columns)
    intercept, slope = _base_lines(post, columns, struct)
    parts = _covariate_parts(post, struct, data, columns, by_site=True)
    if parts is not None:
        if "site" not in intercept.dims:
            intercept = intercept.expand_dims(site=parts[0]["site"].values.tolist())
            slope = slope.expand_dims(site=parts[0]["site"].values.tolist())
        intercept = intercept + parts[0].sel(site=intercept["site"])
        slope = slope + parts[1].sel(site=intercept["site"])
    intercept, slope = xr.broadcast(intercept, slope)
    if sites is not None:
        labels = [str(s) for s in sites]
        if "site" not in intercept.dims:
            intercept = intercept.expand_dims(site=labels)
            slope = slope.expand_dims(site=labels)
        missing = sorted(set(labels) - set(intercept["site"].values.tolist()))
        if missing:
            raise KeyError(
                f"sites {missing[:5]} are not in the posterior (has {intercept['site'].values[:5].tolist()} …)"
            )
        intercept, slope = intercept.sel(site=labels), slope.sel(site=labels)
    order = [d for d in (*SAMPLE_DIMS, "site") if d in intercept.dims]
    return intercept.transpose(*order), (slope / scale.scale).transpose(*order)


def population_line(
    idata, columns: dict, scale: PredictorScale = PredictorScale(), data: pd.DataFrame | None = None
) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Population-level (intercept at the centre, slope per original unit); None for no pooling (there is none).

    Covariates are held at their average over all rows.
    """
    post = posterior_dataset(idata)
    struct = structure(post, columns)
    if struct.role == "no_pooling":
        return None
    n = names(columns)
    intercept = scalar_draws(post, n["intercept"]) if n["intercept"] in post else zero(post)
    slope = (
        scalar_draws(post, n["slope"])
        if n["slope"] and n["slope"] in post
        else xr.zeros_like(intercept)
    )
    parts = _covariate_parts(post, struct, data, columns, by_site=False)
    if parts is not None:
        intercept, slope = intercept + parts[0], slope + parts[1]
    return intercept, slope / scale.scale


def site_sds(
    idata, columns: dict, scale: PredictorScale = PredictorScale()
) -> tuple[xr.DataArray, xr.DataArray] | None:
    """SD of the site intercepts (at the centre) and of the site slopes (per original unit); None without site effects.

    A varying-intercepts model has a slope SD of exactly 0.
    """
    post = posterior_dataset(idata)
    n = names(columns)
    if n["sd_intercept"] not in post:
        return None
    sd0 = scalar_draws(post, n["sd_intercept"])
    sd1 = (
        scalar_draws(post, n["sd_slope"]) / scale.scale
        if n["slope"] and n["sd_slope"] in post
        else xr.zeros_like(sd0)
    )
    return sd0, sd1


def site_correlation(idata, columns: dict) -> xr.DataArray | None:
    """Draws of the correlation of the site intercepts and slopes; None when the model has none.

    Only a model fitted with ``correlated: true`` (`hierpool.correlated`) has one: Bambi's
    ``(x|site)`` makes them independent (a correlation of exactly 0).
    """
    post = posterior_dataset(idata)
    n = names(columns)
    var = f"{columns['group']}_corr"
    if var not in post or not n["slope"]:
        return None
    from hierpool.correlated import expression_of

    wanted = f"{expression_of(n['site_intercept'])}, {expression_of(n['site_slope'])}"
    corr = post[var]
    pair_dim = next(d for d in corr.dims if d not in SAMPLE_DIMS)
    if wanted not in [str(v) for v in corr[pair_dim].values]:
        return None
    return corr.sel({pair_dim: wanted}, drop=True)


def factor_sds(idata, columns: dict) -> dict[str, xr.DataArray]:
    """SD draws of the varying intercept of every grouping factor (the site's first), e.g. ``{"site": .., "site:class": ..}``."""
    post = posterior_dataset(idata)
    out = {}
    for factor, exprs in structure(post, columns).group_terms.items():
        if "1" in exprs and f"1|{factor}_sigma" in post:
            out[factor] = scalar_draws(post, f"1|{factor}_sigma")
    return out


def sigma(idata) -> xr.DataArray:
    """The residual SD draws of a Gaussian or t model."""
    return scalar_draws(posterior_dataset(idata), "sigma")


def _factor_labels(data: pd.DataFrame, factor: str) -> np.ndarray:
    parts = [data[c].astype(str).to_numpy() for c in factor.split(":")]
    out = parts[0]
    for part in parts[1:]:
        out = np.char.add(np.char.add(out.astype(str), ":"), part.astype(str))
    return out


def _other_factor_effects(
    post: xr.Dataset, struct: roles.ModelRoles, data: pd.DataFrame, columns: dict
) -> np.ndarray | float:
    """Sum over grouping factors other than the site of their varying intercepts, per observation."""
    total = 0.0
    for factor, exprs in struct.group_terms.items():
        if factor == columns["group"]:
            continue
        for expr in exprs:
            da = post[f"{expr}|{factor}"]
            dim = next(d for d in da.dims if d not in SAMPLE_DIMS)
            index = pd.Index([str(v) for v in da[dim].values]).get_indexer(
                _factor_labels(data, factor)
            )
            if (index < 0).any():
                raise KeyError(f"some levels of {factor!r} in the data are not in the posterior")
            values = da.values[..., index]
            total = total + (values if expr == "1" else values * data[expr].to_numpy(float))
    return total


def mu_draws(idata, data: pd.DataFrame, columns: dict, include_site: bool = True) -> np.ndarray:
    """Linear predictor (link scale) per draw and observation, shape (chain, draw, obs), from the posterior arrays.

    ``data`` is the cleaned data the model was fitted to (predictor on the model scale).
    ``include_site=False`` gives the population-level prediction (every varying effect set
    to 0), which does not exist for no pooling (ValueError).
    """
    post = posterior_dataset(idata)
    struct = structure(post, columns)
    p = columns.get("predictor")
    x = data[p].to_numpy(dtype=float) if p else np.zeros(len(data))
    if include_site:
        intercept, slope = xr.broadcast(*_base_lines(post, columns, struct))
        if "site" in intercept.dims:
            intercept, slope = (
                intercept.transpose(*SAMPLE_DIMS, "site"),
                slope.transpose(*SAMPLE_DIMS, "site"),
            )
            index = pd.Index(intercept["site"].values.tolist()).get_indexer(
                data[columns["group"]].astype(str)
            )
            if (index < 0).any():
                raise KeyError("some sites of the data are not in the posterior")
            a, b = intercept.values[..., index], slope.values[..., index]
        else:
            a, b = intercept.values[..., None], slope.values[..., None]
        mu = a + b * x + _other_factor_effects(post, struct, data, columns)
    else:
        if struct.role == "no_pooling":
            raise ValueError(
                "no pooling has no population-level line: a marginal prediction is undefined"
            )
        n = names(columns)
        a = scalar_draws(post, n["intercept"]).values if n["intercept"] in post else 0.0
        b = scalar_draws(post, n["slope"]).values if p and n["slope"] in post else 0.0
        mu = np.asarray(a)[..., None] + np.asarray(b)[..., None] * x
    for term, (at_data, _, _) in design.covariate_design(struct, data, columns).items():
        mu = mu + design.coefficient_draws(post, term) @ at_data.T
    return mu


def inverse_link(values, link: str):
    """Map link-scale values to the response scale (the mean: a probability, a rate, the outcome)."""
    values = np.asarray(values, dtype=float)
    if link == "identity":
        return values
    if link == "logit":
        return 1.0 / (1.0 + np.exp(-values))
    if link == "log":
        return np.exp(values)
    if link == "probit":
        from scipy.special import ndtr

        return ndtr(values)
    if link == "cloglog":
        return 1.0 - np.exp(-np.exp(values))
    raise ValueError(f"unknown link {link!r}")
