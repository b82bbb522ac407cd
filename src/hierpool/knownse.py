"""Known standard errors (``spec["known_se"]``): the log-likelihood and predictive draws by hand.

sigma is the distributional sub-formula ``sigma ~ 0 + offset(log(se))``, which Bambi 0.17.2
builds and samples, but its ``compute_log_likelihood`` and ``predict`` fail on a component that
has only an offset (the linear predictor stays a NumPy array). So for these models the
log-likelihood and the predictive draws are computed here, from Bambi's prediction of the mean
(``mu``) and the known SEs of the same rows: Normal(y_i | mu_i, se_i), exactly the model's
likelihood.
"""

from __future__ import annotations

import bambi as bmb
import numpy as np
import xarray as xr
from scipy import stats

from hierpool import loo as hploo
from hierpool.models import known_se_column


def _known_se_chunks(model: bmb.Model, posterior, size: int):
    """Yield ``(rows, mu, y, se)`` per chunk of rows; ``mu`` has dims (chain, draw, __obs__)."""
    column = known_se_column(model)
    parent = model.family.likelihood.parent
    y_all = np.squeeze(np.asarray(model.response_component.term.data, dtype=float))
    for rows in hploo.row_chunks(len(model.data), size):
        part = hploo._posterior_only(posterior)
        with hploo.scipy_sparse_dot():
            mu = model.components[parent].predict(part, data=hploo._whole(model, rows))
        mu = mu.transpose("chain", "draw", hploo.OBS).assign_coords(
            {hploo.OBS: np.arange(rows.start, rows.stop)}
        )
        se = model.data[column].to_numpy(dtype=float)[rows]
        yield rows, mu, y_all[rows], se


def response_name(model: bmb.Model) -> str:
    term = model.response_component.term
    return term.alias or term.name


def known_se_loo(
    model: bmb.Model, posterior, budget_mb: float = 64, keep: bool = False, totals=None
):
    """`hierpool.loo.chunked_loo` for a model with known standard errors (same return value)."""
    reff = hploo.relative_ess(posterior)
    size = hploo.chunk_size(posterior.sizes["chain"] * posterior.sizes["draw"], budget_mb)
    parts, kept = [], []
    for _, mu, y, se in _known_se_chunks(model, posterior, size):
        log_lik = xr.Dataset(
            {response_name(model): mu.copy(data=stats.norm.logpdf(y, mu.values, se))}
        )
        parts.append(hploo._chunk_loo(log_lik, reff))
        if totals is not None:
            totals.append(log_lik[response_name(model)].sum(hploo.OBS))
        if keep:
            kept.append(log_lik)
    full = (xr.concat(kept, dim=hploo.OBS) if len(kept) > 1 else kept[0]) if keep else None
    return hploo.assemble_loo(parts), full


def known_se_predictive(
    model: bmb.Model, posterior, seed: int, budget_mb: float = 64
) -> xr.Dataset:
    """Posterior predictive draws ``y_i ~ Normal(mu_i, se_i)`` for a model with known standard errors."""
    size = hploo.chunk_size(posterior.sizes["chain"] * posterior.sizes["draw"], budget_mb)
    rng = np.random.default_rng(seed)
    out = [
        xr.Dataset({response_name(model): mu.copy(data=rng.normal(mu.values, se))})
        for _, mu, _, se in _known_se_chunks(model, posterior, size)
    ]
    return out[0] if len(out) == 1 else xr.concat(out, dim=hploo.OBS)
