"""Per-observation quantities in bounded memory: log-likelihood, PSIS-LOO and predictions by row chunks.

A draws × observations array is never built whole unless it is small: Bambi evaluates the
model on one chunk of rows at a time (``data=`` a slice of the model's own data frame, so group
levels keep the fit's coding even where a chunk lacks some sites), and PSIS-LOO, which is
per observation, is computed per chunk and assembled into one ``az.ELPDData`` equal to
``az.loo(idata, pointwise=True)`` on the full matrix.

Bambi multiplies the group-specific design matrix by the draws with ``pydata/sparse``'s einsum,
which needs about 30 times the memory of its result (and is slow); while chunking,
:func:`scipy_sparse_dot` swaps in the same product done by SciPy (memory: the result only).
Bambi's ``pm.logp(...).eval()`` leaves reference cycles holding several chunk-sized arrays, so
every chunk ends with ``gc.collect()``. Peak memory is about 12 times one chunk's array.
"""

from __future__ import annotations

import contextlib
import gc
import warnings
import weakref
from collections.abc import Iterator

import arviz as az
import bambi as bmb
import numpy as np
import sparse
import xarray as xr

from hierpool import psis

OBS = "__obs__"
SCALARS = ("elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "warning", "scale", "good_k")
ELPD_INDEX = [
    "elpd_loo",
    "se",
    "p_loo",
    "n_samples",
    "n_data_points",
    "warning",
    "loo_i",
    "pareto_k",
    "scale",
    "good_k",
]


def chunk_size(n_samples: int, budget_mb: float) -> int:
    """Rows per chunk so that one float64 array of ``n_samples`` × rows fits in ``budget_mb`` MiB."""
    return max(1, int(budget_mb * 2**20 // (8 * max(1, n_samples))))


def row_chunks(n_rows: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def _sparse_times_dense(z: xr.DataArray, u: xr.DataArray) -> xr.DataArray:
    """``xr.dot(z, u)`` for a 2-D ``sparse.COO`` ``z``, by SciPy's CSR product (same dims and order)."""
    row_dim, col_dim = z.dims
    rest = [d for d in u.dims if d != col_dim]
    dense = u.transpose(col_dim, *rest).values
    product = z.data.tocsr() @ dense.reshape(dense.shape[0], -1)
    return xr.DataArray(product.reshape(z.shape[0], *dense.shape[1:]), dims=(row_dim, *rest))


class _XarrayWithScipyDot:
    """xarray, except that ``dot`` of a sparse matrix and dense draws goes through SciPy."""

    def __getattr__(self, name):
        return getattr(xr, name)

    @staticmethod
    def dot(*arrays, **kwargs):
        if (
            len(arrays) == 2
            and not kwargs
            and isinstance(arrays[0].data, sparse.COO)
            and arrays[0].ndim == 2
            and not isinstance(arrays[1].data, sparse.COO)
        ):
            return _sparse_times_dense(*arrays)
        return xr.dot(*arrays, **kwargs)


@contextlib.contextmanager
def scipy_sparse_dot():
    """Within the block, Bambi's group-specific predictions use :func:`_sparse_times_dense`."""
    import bambi.model_components as components

    original, components.xr = components.xr, _XarrayWithScipyDot()
    try:
        yield
    finally:
        components.xr = original


def _posterior_only(posterior: xr.Dataset) -> az.InferenceData:
    """A throw-away InferenceData for Bambi to add ``mu`` and friends to (the caller's posterior is untouched)."""
    return az.InferenceData(posterior=posterior.drop_dims(OBS, errors="ignore").copy(deep=False))


def _whole(model: bmb.Model, rows: slice):
    """``None`` (Bambi's in-sample path) when the chunk is all the data, else that slice of the data."""
    n = len(model.data)
    return None if rows.start == 0 and rows.stop == n else model.data.iloc[rows]


def log_likelihood_chunks(
    model: bmb.Model, posterior: xr.Dataset, size: int
) -> Iterator[tuple[slice, xr.Dataset]]:
    """Yield ``(rows, log_likelihood)`` per chunk of rows: float64, dims (chain, draw, __obs__), global coords.

    Works for any Bambi family: it is Bambi's own ``compute_log_likelihood`` evaluated on the chunk,
    except for Gaussian models with a constant sigma, where `hierpool.linear` evaluates the same
    density from the design directly (about 4 times faster).
    """
    from hierpool import linear

    if linear.applies(model):
        for rows in row_chunks(len(model.data), size):
            yield rows, linear.gaussian_log_likelihood(model, posterior, rows)
        return
    for rows in row_chunks(len(model.data), size):
        part = _posterior_only(
            posterior
        )  # in place on a throw-away: inplace=False would deep-copy the posterior
        with scipy_sparse_dot():
            model.compute_log_likelihood(part, data=_whole(model, rows), inplace=True)
        gc.collect()
        yield rows, part.log_likelihood.assign_coords({OBS: np.arange(rows.start, rows.stop)})


def log_likelihood_at(model: bmb.Model, posterior: xr.Dataset, rows: np.ndarray) -> xr.DataArray:
    """The pointwise log-likelihood of the given rows (row numbers of ``model.data``) for every draw.

    Any Bambi family, and the known-SE models; used for the held-out rows of a refit
    (`hierpool.crossval`), whose posterior may come from a model that never saw them.

    Returns
    -------
    xarray.DataArray
        Dims (chain, draw, __obs__), ``__obs__`` the row numbers.
    """
    from hierpool import linear
    from hierpool.models import known_se_column

    rows = np.asarray(rows, dtype=int)
    if linear.applies(model):
        dataset = linear.gaussian_log_likelihood(model, posterior, rows)
    elif known_se_column(model):
        from scipy import stats

        part = _posterior_only(posterior)
        parent = model.family.likelihood.parent
        with scipy_sparse_dot():
            mu = model.components[parent].predict(part, data=model.data.iloc[rows])
        mu = mu.transpose("chain", "draw", OBS)
        y = np.squeeze(np.asarray(model.response_component.term.data, dtype=float))[rows]
        se = model.data[known_se_column(model)].to_numpy(dtype=float)[rows]
        dataset = xr.Dataset({"y": mu.copy(data=stats.norm.logpdf(y, mu.values, se))})
    else:
        part = _posterior_only(posterior)
        with scipy_sparse_dot():
            model.compute_log_likelihood(part, data=model.data.iloc[rows], inplace=True)
        gc.collect()
        dataset = part.log_likelihood
    (values,) = dataset.data_vars.values()
    return values.transpose("chain", "draw", OBS).assign_coords({OBS: rows})


_REFF: dict[
    int, tuple
] = {}  # id(posterior) -> (weak reference, its variables' names and shapes, value)


def relative_ess(posterior: xr.Dataset) -> float:
    """The relative efficiency ``az.loo`` uses: mean ESS over every posterior value / number of draws.

    Kept per posterior object (while it lives and its variables stay the same): a fit job asks it
    for PSIS-LOO, moment matching and leave-one-site-out, and at 10,000 sites one ESS pass takes
    about 10 s.
    """
    if posterior.sizes["chain"] == 1:
        return 1.0
    key = tuple((name, var.shape) for name, var in posterior.data_vars.items())
    kept = _REFF.get(id(posterior))
    if kept is not None and kept[0]() is posterior and kept[1] == key:
        return kept[2]
    ess = az.ess(posterior, method="mean")
    value = float(
        np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean()
        / (posterior.sizes["chain"] * posterior.sizes["draw"])
    )
    for stale in [k for k, (ref, _, _) in _REFF.items() if ref() is None]:
        del _REFF[stale]
    _REFF[id(posterior)] = (weakref.ref(posterior), key, value)
    return value


def _chunk_loo(log_lik: xr.Dataset, reff: float) -> az.ELPDData:
    """``az.loo(..., pointwise=True)`` of one chunk, by `hierpool.psis` (the same result, compiled)."""
    if len(log_lik.data_vars) != 1:
        with warnings.catch_warnings():  # per-chunk warnings are judged once, on the whole set
            warnings.simplefilter("ignore")
            return az.loo(az.InferenceData(log_likelihood=log_lik), pointwise=True, reff=reff)
    values = next(iter(log_lik.data_vars.values())).transpose(OBS, "chain", "draw")
    matrix = values.values.reshape(values.sizes[OBS], -1)
    elpd_i, lppd_i, k = psis.psis_loo(matrix, reff)
    n_samples = matrix.shape[1]
    good_k = min(1 - 1 / np.log10(n_samples), 0.7)
    coords = {OBS: values[OBS].values}
    fields = {
        "elpd_loo": float(elpd_i.sum()),
        "se": float((elpd_i.size * np.var(elpd_i)) ** 0.5),
        "p_loo": float(lppd_i.sum() - elpd_i.sum()),
        "n_samples": n_samples,
        "n_data_points": elpd_i.size,
        "warning": bool(np.any(k > good_k)),
        "loo_i": xr.DataArray(elpd_i, dims=(OBS,), coords=coords, name="loo_i"),
        "pareto_k": xr.DataArray(k, dims=(OBS,), coords=coords, name="pareto_shape"),
        "scale": "log",
        "good_k": good_k,
    }
    return az.ELPDData(data=[fields[key] for key in ELPD_INDEX], index=ELPD_INDEX)


def assemble_loo(parts: list[az.ELPDData]) -> az.ELPDData:
    """One ``ELPDData`` from per-chunk LOO results (in row order), as ``az.loo`` computes it on all rows."""
    loo_i = xr.concat([p.loo_i for p in parts], dim=OBS)
    pareto_k = xr.concat([p.pareto_k for p in parts], dim=OBS)
    first = parts[0]
    n = int(loo_i.size)
    elpd = float(loo_i.values.sum())
    scale_value = {"log": 1, "negative_log": -1, "deviance": -2}[first["scale"]]
    lppd = sum(p.p_loo + p.elpd_loo / scale_value for p in parts)
    values = {
        "elpd_loo": elpd,
        "se": float((n * np.var(loo_i.values)) ** 0.5),
        "p_loo": float(lppd - elpd / scale_value),
        "n_samples": first.n_samples,
        "n_data_points": n,
        "warning": bool(np.any(pareto_k.values > first.good_k)),
        "loo_i": loo_i,
        "pareto_k": pareto_k,
        "scale": first["scale"],
        "good_k": first.good_k,
    }
    if values["warning"]:
        warnings.warn(
            f"Estimated shape parameter of Pareto distribution is greater than {first.good_k:.2f} for one or more samples.",
            stacklevel=2,
        )
    return az.ELPDData(data=[values[k] for k in ELPD_INDEX], index=ELPD_INDEX)


def chunked_loo(
    model: bmb.Model,
    posterior: xr.Dataset,
    budget_mb: float = 64,
    keep: bool = False,
    totals: list | None = None,
) -> tuple[az.ELPDData, xr.Dataset | None]:
    """PSIS-LOO from the log-likelihood computed chunk by chunk; the full log-likelihood too when ``keep``.

    Parameters
    ----------
    model : bambi.Model
        The fitted model (its ``data`` is what is evaluated).
    posterior : xarray.Dataset
        Posterior draws, without per-observation variables.
    budget_mb : float
        Memory for one draws × chunk-rows float64 array, in MiB.
    keep : bool
        Also return the whole log-likelihood dataset (float64): only for small data.
    totals : list, optional
        Receives each chunk's log-likelihood summed over its rows (dims chain, draw); their sum
        is every draw's total log-likelihood (`hierpool.sensitivity`).

    Returns
    -------
    (az.ELPDData, xarray.Dataset or None)
    """
    reff = relative_ess(posterior)
    size = chunk_size(posterior.sizes["chain"] * posterior.sizes["draw"], budget_mb)
    parts, kept = [], []
    for _, log_lik in log_likelihood_chunks(model, posterior, size):
        parts.append(_chunk_loo(log_lik, reff))
        if totals is not None:
            totals.append(sum(v.sum(OBS) for v in log_lik.data_vars.values()))
        if keep:
            kept.append(log_lik)
    full = None
    if keep:
        full = xr.concat(kept, dim=OBS) if len(kept) > 1 else kept[0]
        full.attrs = kept[0].attrs
    return assemble_loo(parts), full


def posterior_predictive_chunked(
    model: bmb.Model, posterior: xr.Dataset, seed: int, budget_mb: float = 64
) -> xr.Dataset:
    """Posterior predictive draws, chunk by chunk of rows (one seed per chunk; one chunk = Bambi's own call)."""
    size = chunk_size(posterior.sizes["chain"] * posterior.sizes["draw"], budget_mb)
    chunks = row_chunks(len(model.data), size)
    out = []
    for i, rows in enumerate(chunks):
        chunk_seed = (
            seed
            if len(chunks) == 1
            else int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        )
        part = _posterior_only(posterior)
        with scipy_sparse_dot():
            model.predict(
                part,
                kind="response",
                data=_whole(model, rows),
                inplace=True,
                random_seed=chunk_seed,
            )
        gc.collect()
        out.append(part.posterior_predictive.assign_coords({OBS: np.arange(rows.start, rows.stop)}))
    return out[0] if len(out) == 1 else xr.concat(out, dim=OBS, combine_attrs="override")


def save_loo(result: az.ELPDData, path, pit=None, matched: dict | None = None) -> None:
    """Write the pointwise PSIS values (``loo_i``, ``pareto_k``), the scalars (as attributes) and, if given, ``loo_pit`` and the moment matching.

    ``matched`` (`hierpool.momentmatch.remedy`): ``loo_i_mm`` and ``pareto_k_mm`` where an
    observation was moment-matched (NaN elsewhere) and its note as ``moment_match_note``.
    """
    from hierpool.io import atomic_write

    attrs = {k: (int(result[k]) if k == "warning" else result[k]) for k in SCALARS}
    loo_i = result.loo_i.reset_coords(drop=True)
    variables = {"loo_i": loo_i, "pareto_k": result.pareto_k.reset_coords(drop=True)}
    if pit is not None:
        variables["loo_pit"] = loo_i.copy(data=np.asarray(pit, dtype=float))
    if matched is not None:
        rows = np.asarray(matched["rows"], dtype=int)
        for name, key in (("loo_i_mm", "elpd"), ("pareto_k_mm", "pareto_k")):
            values = np.full(loo_i.size, np.nan)
            values[rows] = matched[key]
            variables[name] = loo_i.copy(data=values)
        attrs["moment_match_note"] = matched["note"]
    ds = xr.Dataset(variables, attrs=attrs)
    atomic_write(path, lambda p: ds.to_netcdf(str(p)))


def load_moment_match(path) -> dict | None:
    """What :func:`save_loo` stored of the moment matching: ``rows``, ``elpd``, ``pareto_k``, ``note`` (None if it did not run)."""
    with xr.open_dataset(path) as ds:
        if "moment_match_note" not in ds.attrs:
            return None
        note = str(ds.attrs["moment_match_note"])
        if "pareto_k_mm" not in ds:
            return {"rows": [], "elpd": [], "pareto_k": [], "note": note}
        k = ds["pareto_k_mm"].values
        rows = np.flatnonzero(~np.isnan(k))
        return {
            "rows": rows.tolist(),
            "elpd": ds["loo_i_mm"].values[rows].tolist(),
            "pareto_k": k[rows].tolist(),
            "note": note,
        }


def load_pit(path) -> np.ndarray | None:
    """The LOO-PIT values :func:`save_loo` stored with a fit's LOO (None if it has none)."""
    with xr.open_dataset(path) as ds:
        return ds["loo_pit"].values.copy() if "loo_pit" in ds else None


def load_loo(path) -> az.ELPDData:
    """Read what :func:`save_loo` wrote back into the ``ELPDData`` that ``az.loo`` returns."""
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    values = {k: ds.attrs[k] for k in SCALARS}
    values.update(
        n_samples=int(values["n_samples"]),
        n_data_points=int(values["n_data_points"]),
        warning=bool(values["warning"]),
        scale=str(values["scale"]),
        good_k=float(values["good_k"]),
        elpd_loo=float(values["elpd_loo"]),
        se=float(values["se"]),
        p_loo=float(values["p_loo"]),
        loo_i=ds["loo_i"],
        pareto_k=ds["pareto_k"].rename("pareto_shape"),
    )
    return az.ELPDData(data=[values[k] for k in ELPD_INDEX], index=ELPD_INDEX)
