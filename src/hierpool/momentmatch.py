"""Moment matching for the observations whose PSIS-LOO Pareto k is too high (Paananen et al. 2021).

The first step of the remedy chain (`hierpool.crossval`): the posterior draws, in the
sampler's unconstrained space, are moved by affine transformations until they approximate the
posterior without the observation, with no refit. `arviz_stats.loo_moment_match` does the
algorithm; this module gives it what it needs from a fit:

* the unconstrained draws (nutpie's ``store_unconstrained``, `UNCONSTRAINED` in ``sample_stats``);
* the model's log posterior density and one observation's log-likelihood at any such draws,
  compiled once from the PyMC model and vectorised over draws (`DensityFunctions`).

It runs inside the fit job, where the compiled model and the draws are at hand; what it could not
bring under the threshold goes on to exact refits or K-fold (`hierpool.refitplan.loo_plan`).
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import xarray as xr

UNCONSTRAINED = "unconstrained_draw"
PARAMETER_DIM = "unconstrained_parameter"
CHUNK_VALUES = 4_000_000  # draws × rows evaluated at once (about 32 MB per float64 array)


def _flat_layout(names, value_vars, shapes: dict) -> list[tuple[str, slice, tuple]]:
    """Where each value variable sits in nutpie's flat vector (names like ``x``, ``x_0``, ``x_0.1``)."""
    by_first = {}
    for var in value_vars:
        shape = tuple(shapes[var.name])
        first = var.name if not shape else f"{var.name}_{'.'.join('0' * len(shape))}"
        by_first[first] = (var.name, shape)
    layout, pos = [], 0
    names = list(names)
    while pos < len(names):
        if names[pos] not in by_first:
            raise ValueError(f"unconstrained parameter {names[pos]!r} is not a value variable")
        name, shape = by_first[names[pos]]
        size = int(np.prod(shape, dtype=int))
        layout.append((name, slice(pos, pos + size), shape))
        pos += size
    if sorted(n for n, _, _ in layout) != sorted(v.name for v in value_vars):
        raise ValueError("the unconstrained draws do not hold every value variable")
    return layout


class DensityFunctions:
    """The log posterior density and the pointwise log-likelihood of a PyMC model, vectorised over draws.

    Parameters
    ----------
    model_pm : pymc.Model
        A model with the response as an observed variable (the per-row likelihood).
    names : sequence of str
        The flat unconstrained parameters in the order of the draws (nutpie's names).
    """

    def __init__(self, model_pm, names):
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import vectorize_graph

        if len(model_pm.observed_RVs) != 1:
            raise ValueError("moment matching needs a model with one observed response")
        value_vars = list(model_pm.value_vars)
        shapes = {k: np.shape(v) for k, v in model_pm.initial_point().items()}
        self.layout = _flat_layout(names, value_vars, shapes)
        batched = {v: pt.tensor(shape=(None, *v.type.shape), dtype=v.dtype) for v in value_vars}
        for (
            var,
            tensor,
        ) in batched.items():  # named afterwards: pytensor parses "1|site..." as a dtype
            tensor.name = f"{var.name}__batch"
        self._inputs = [batched[v] for v in value_vars]
        self._order = [v.name for v in value_vars]
        (log_lik,) = model_pm.logp(vars=model_pm.observed_RVs, sum=False)
        self.n_rows = int(np.prod(model_pm.observed_RVs[0].shape.eval()))
        log_lik = log_lik.reshape((-1,))
        rows = pt.lvector("rows")
        row = pt.lscalar("row")
        log_post = vectorize_graph(model_pm.logp(jacobian=True), replace=batched)
        log_lik_rows = vectorize_graph(log_lik[rows], replace=batched)
        log_lik_row = vectorize_graph(log_lik[row : row + 1], replace=batched)
        # without PyMC's parameter checks (the unconstrained draws satisfy them), PyTensor moves a
        # slice of the rows up through the graph: one row's density no longer evaluates every row
        mode = pytensor.compile.get_default_mode().including("local_remove_check_parameter")
        self._log_post = pytensor.function(
            self._inputs, log_post, on_unused_input="ignore", mode=mode
        )
        self._log_lik = pytensor.function(
            [*self._inputs, rows], log_lik_rows, on_unused_input="ignore", mode=mode
        )
        self._log_lik_row = pytensor.function(
            [*self._inputs, row], log_lik_row, on_unused_input="ignore", mode=mode
        )

    def _arrays(self, flat: np.ndarray) -> list[np.ndarray]:
        parts = {
            name: flat[:, where].reshape((flat.shape[0], *shape))
            for name, where, shape in self.layout
        }
        return [parts[name] for name in self._order]

    def _chunks(self, flat: np.ndarray, cost: int):
        size = max(1, CHUNK_VALUES // max(cost, 1))
        for start in range(0, flat.shape[0], size):
            yield self._arrays(flat[start : start + size])

    @staticmethod
    def _flat(upars: xr.DataArray) -> tuple[np.ndarray, xr.DataArray]:
        upars = upars.transpose("chain", "draw", ...)
        template = upars.isel({upars.dims[-1]: 0}, drop=True)
        return upars.values.reshape(-1, upars.shape[-1]), template

    def log_posterior(self, upars: xr.DataArray) -> xr.DataArray:
        """Unnormalised log posterior density (Jacobian included) at each draw: dims (chain, draw)."""
        flat, template = self._flat(upars)
        out = np.concatenate([self._log_post(*a) for a in self._chunks(flat, self.n_rows)])
        return template.copy(data=out.reshape(template.shape))

    def log_likelihood(self, upars: xr.DataArray, rows) -> np.ndarray:
        """Log-likelihood of the given rows at each draw: array (chain, draw, rows)."""
        flat, template = self._flat(upars)
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        # chunks sized by every row: where PyTensor cannot lift the row out, a graph evaluates them all
        chunks = self._chunks(flat, self.n_rows)
        if rows.size == 1:  # moment matching's calls: the row's own graph (draws × parameters)
            out = np.concatenate([self._log_lik_row(*a, int(rows[0])) for a in chunks])
        else:  # this graph evaluates every row before it picks ``rows``
            out = np.concatenate([self._log_lik(*a, rows) for a in chunks])
        return out.reshape((*template.shape, rows.size))


def unconstrained_draws(idata) -> xr.DataArray | None:
    """The draws in the sampler's unconstrained space (chain, draw, parameter), if the fit kept them."""
    stats = idata.sample_stats if "sample_stats" in idata.groups() else None
    if stats is None or UNCONSTRAINED not in stats:
        return None
    return stats[UNCONSTRAINED]


def moment_match(
    functions: DensityFunctions,
    upars: xr.DataArray,
    rows,
    reff: float,
    threshold: float,
) -> dict:
    """Moment-matched PSIS-LOO of the given observations (`arviz_stats.loo_moment_match`).

    Parameters
    ----------
    functions : DensityFunctions
        The model's densities.
    upars : xarray.DataArray
        Unconstrained draws (chain, draw, parameter), as `unconstrained_draws` returns them.
    rows : array of int
        The observations (rows of the data) to match, usually those with high Pareto k.
    reff : float
        Relative efficiency of the draws (as the fit's PSIS-LOO used, `hierpool.loo.relative_ess`).
    threshold : float
        Pareto k above which PSIS is unreliable (`hierpool.refitplan.pareto_threshold`).

    Returns
    -------
    dict
        ``rows``, ``elpd`` and ``pareto_k`` after matching, arrays in the order of ``rows``.
    """
    import arviz_stats

    rows = np.asarray(rows, dtype=int)
    upars = upars.rename({upars.dims[-1]: PARAMETER_DIM}).transpose("chain", "draw", PARAMETER_DIM)
    log_lik = functions.log_likelihood(upars, rows)
    template = upars.isel({PARAMETER_DIM: 0}, drop=True)
    ll = xr.DataArray(
        log_lik,
        dims=("chain", "draw", "__obs__"),
        coords={**template.coords, "__obs__": rows},
        name="y",
    )
    tree = xr.DataTree.from_dict(
        {"posterior": xr.Dataset({"upars": upars}), "log_likelihood": xr.Dataset({"y": ll})}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = arviz_stats.loo(tree, pointwise=True, var_name="y", reff=reff)
        if not (before.pareto_k.values > threshold).any():
            after = before
        else:
            after = arviz_stats.loo_moment_match(
                tree,
                before,
                log_prob_upars_fn=functions.log_posterior,
                log_lik_i_upars_fn=lambda u, i: template.copy(
                    data=functions.log_likelihood(u, rows[int(i)])[..., 0]
                ),
                upars=upars,
                var_name="y",
                reff=reff,
                k_threshold=threshold,
                pointwise=True,
            )
    return {
        "rows": rows,
        "elpd": after.elpd_i.values.astype(float).copy(),
        "pareto_k": after.pareto_k.values.astype(float).copy(),
    }


def drop_unconstrained(idata) -> None:
    """Remove the unconstrained draws (only moment matching needs them; `hierpool.fit.save` drops them too)."""
    if unconstrained_draws(idata) is not None:
        idata.sample_stats = idata.sample_stats.drop_vars(UNCONSTRAINED)


def _density_model(model):
    """The PyMC model that was sampled, with the response observed per row."""
    from hierpool import pymc_model

    if pymc_model.settings(model) is None:
        return model.backend.model
    return pymc_model.pymc_model(model, likelihood="rows")


def remedy(model, idata, psis, max_obs: int) -> dict:
    """Moment-match a fit's high-k observations (up to ``max_obs``, highest k first).

    Parameters
    ----------
    model : bambi.Model
        The fitted model (built; hierpool's PyMC model where it was sampled).
    idata : arviz.InferenceData
        The fit, with the unconstrained draws (`hierpool.fit.fit` with ``keep_unconstrained``).
    psis : arviz.ELPDData
        Its pointwise PSIS-LOO.
    max_obs : int
        At most this many observations (0: off).

    Returns
    -------
    dict
        ``rows``, ``elpd``, ``pareto_k`` (after matching, one per matched row), ``threshold``
        and ``note`` (what was done, in words, or why not).
    """
    from hierpool.loo import relative_ess
    from hierpool.refitplan import high_k, pareto_threshold

    n_samples = int(psis.n_samples)
    threshold = pareto_threshold(n_samples)
    k = np.asarray(psis.pareto_k, dtype=float).ravel()
    high = high_k(k, n_samples)
    record = {"rows": [], "elpd": [], "pareto_k": [], "threshold": threshold}
    upars = unconstrained_draws(idata)
    if high.size == 0:
        return {**record, "note": "not needed: no Pareto k above the threshold"}
    if max_obs <= 0:
        return {**record, "note": "off (checking.max_moment_match: 0)"}
    if upars is None:
        return {
            **record,
            "note": "unavailable: the sampler kept no unconstrained draws (nutpie keeps them)",
        }
    rows = high[:max_obs]
    start = time.perf_counter()
    quiet = logging.getLogger("arviz_stats")  # one INFO line per ESS of a short chain otherwise
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        functions = DensityFunctions(_density_model(model), upars.coords[upars.dims[-1]].values)
        out = moment_match(functions, upars, rows, relative_ess(idata.posterior), threshold)
    except Exception as err:  # noqa: BLE001 - the observations go on to exact refits or K-fold
        return {**record, "note": f"unavailable for this model ({type(err).__name__}: {err})"}
    finally:
        quiet.setLevel(level)
    resolved = int((out["pareto_k"] <= threshold).sum())
    skipped = high.size - rows.size
    note = (
        f"{resolved} of {rows.size} observations brought below k = {threshold:.2f} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    if skipped:
        note += f"; {skipped} more above max_moment_match"
    return {
        **record,
        "rows": rows.tolist(),
        "elpd": out["elpd"].tolist(),
        "pareto_k": out["pareto_k"].tolist(),
        "note": note,
    }
