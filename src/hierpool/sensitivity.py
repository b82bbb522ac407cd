"""Power-scaling prior sensitivity (Kallioinen et al. 2023, priorsense): which estimates the prior decides.

Each fit stores, per draw, the log prior density of its population-level parameters (group
``log_prior``: intercept, slopes, between-site SDs, residual SD and other family parameters;
not the site effects, whose "prior" is the model's hierarchy; a correlated block's SDs and
correlation through `block_log_prior`) and its total log-likelihood
(``sample_stats.hierpool_log_likelihood``). Scaling the prior or the likelihood by a power
near 1 and measuring, by importance weighting, how far each posterior moves (the cumulative
Jensen-Shannon distance per unit of log power) tells whether the prior or the data decide it:
`arviz_stats.psense_summary` does the computation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

LOG_LIKELIHOOD_TOTAL = "hierpool_log_likelihood"
THRESHOLD = 0.05  # priorsense's: a sensitivity above it is flagged
SAMPLE_DIMS = ("chain", "draw")


def is_site_effect(name: str) -> bool:
    """Varying effects and their offsets (``1|site``, ``x|site_offset``), but not their SDs (``1|site_sigma``)."""
    return "|" in name and not name.endswith("_sigma")


def population_parameters(model_pm) -> list:
    """The free variables whose prior is a fixed distribution: no site effects, no internal variables."""
    from hierpool.pymc_model import INTERNAL_SUFFIXES

    chosen = []
    for rv in model_pm.free_RVs:
        if is_site_effect(rv.name) or rv.name.endswith(INTERNAL_SUFFIXES):
            continue
        chosen.append(rv)
    return chosen


def _per_draw_logp(model_pm, rv, draws: np.ndarray) -> np.ndarray | None:
    """The log prior density of every draw of one variable (None if it depends on other variables)."""
    import pytensor

    try:
        from pytensor.graph.traversal import graph_inputs
    except ImportError:  # pragma: no cover - older PyTensor
        from pytensor.graph.basic import graph_inputs

    value = model_pm.rvs_to_values[rv]
    logp = model_pm.logp(vars=[rv], sum=True, jacobian=False)
    if any(v in model_pm.value_vars and v is not value for v in graph_inputs([logp])):
        return None
    fn = pytensor.function([value], logp, on_unused_input="ignore")
    transform = model_pm.rvs_to_transforms.get(rv)
    flat = draws.reshape(-1, *draws.shape[2:])
    if transform is not None:
        flat = np.asarray(transform.forward(flat, *rv.owner.inputs).eval())
    return np.array([fn(v) for v in flat]).reshape(draws.shape[:2])


def log_prior(model_pm, posterior: xr.Dataset) -> xr.Dataset:
    """Per draw, the log prior density of each population-level parameter present in ``posterior``."""
    out = {}
    for rv in population_parameters(model_pm):
        if rv.name not in posterior:
            continue
        values = _per_draw_logp(model_pm, rv, posterior[rv.name].values)
        if values is not None:
            out[rv.name] = (SAMPLE_DIMS, values)
    return xr.Dataset(out, coords={d: posterior[d].values for d in SAMPLE_DIMS})


def block_log_prior(model, posterior: xr.Dataset) -> xr.Dataset:
    """Per draw, the log prior density of each correlated block's site SDs and correlations.

    A correlated block (`hierpool.correlated`) has one free variable, its packed Cholesky
    factor, which the posterior does not keep; its prior is, as specified, each term's SD prior
    on ``<term>_sigma`` and LKJ(eta) on the correlation matrix, whose log density is
    (eta − 1) log det R up to a constant (``<factor>_corr``). Empty for other models.
    """
    import pymc as pm

    from hierpool import correlated, pymc_model
    from hierpool.priors import pymc_distribution, sd_prior

    plan = pymc_model.settings(model)
    out = {}
    if not plan or not plan["correlated"]:
        return xr.Dataset(out)
    groups = model.components[model.family.likelihood.parent].group_specific_terms
    for factor, names in correlated.correlated_blocks(model).items():
        if factor not in plan["correlated"]:
            continue
        for name in names:
            sd_name = f"{name}_sigma"
            if sd_name not in posterior:
                continue
            prior = sd_prior(groups[name])
            draws = posterior[sd_name].transpose(*SAMPLE_DIMS).values
            dist = pymc_distribution(prior).dist(**prior.args)
            out[sd_name] = (SAMPLE_DIMS, pm.logp(dist, draws).eval())
        corr_name = f"{factor}_corr"
        if corr_name in posterior and plan["eta"] != 1:
            pairs = posterior[corr_name].transpose(*SAMPLE_DIMS, ...).values
            k = len(names)
            rows, cols = correlated.corr_pairs(k)
            matrix = np.broadcast_to(np.eye(k), (*pairs.shape[:2], k, k)).copy()
            matrix[..., rows, cols] = pairs
            matrix[..., cols, rows] = pairs
            _, logdet = np.linalg.slogdet(matrix)
            out[corr_name] = (SAMPLE_DIMS, (float(plan["eta"]) - 1.0) * logdet)
    return xr.Dataset(out, coords={d: posterior[d].values for d in SAMPLE_DIMS})


def power_scaling(idata, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Prior and likelihood sensitivity of each population-level parameter of one fit.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with ``log_prior`` and ``sample_stats.hierpool_log_likelihood``.
    threshold : float
        Sensitivity above which a parameter is flagged.

    Returns
    -------
    DataFrame
        ``parameter``, ``prior``, ``likelihood`` (sensitivities), ``diagnosis`` (priorsense's
        words), ``prior_dominated`` (prior sensitive and likelihood not: the data barely inform
        it), ``site_sd`` (a between-site SD).
    """
    import contextlib
    import io

    import arviz_stats

    names = [v for v in idata.log_prior.data_vars if v in idata.posterior]
    posterior = idata.posterior[names]
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "log_prior": idata.log_prior[names],
            "log_likelihood": xr.Dataset({"total": idata.sample_stats[LOG_LIKELIHOOD_TOTAL]}),
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a pointer to its docs
        summary = arviz_stats.psense_summary(tree, threshold=threshold, round_to=6)
    table = summary.reset_index().rename(columns={"index": "parameter"})
    table = table.rename(columns={table.columns[0]: "parameter"})
    table["prior_dominated"] = (table["prior"] >= threshold) & (table["likelihood"] < threshold)
    table["site_sd"] = table["parameter"].str.contains(r"\|.*_sigma", regex=True)
    return table[["parameter", "prior", "likelihood", "diagnosis", "prior_dominated", "site_sd"]]


def dataset_table(fits: dict) -> pd.DataFrame:
    """`power_scaling` of every fit that stores what it needs, one block of rows per model."""
    parts = []
    for model, idata in fits.items():
        if "log_prior" in idata.groups() and LOG_LIKELIHOOD_TOTAL in idata.sample_stats:
            parts.append(power_scaling(idata).assign(model=model))
    if not parts:
        return pd.DataFrame(
            columns=[
                "model",
                "parameter",
                "prior",
                "likelihood",
                "diagnosis",
                "prior_dominated",
                "site_sd",
            ]
        )
    table = pd.concat(parts, ignore_index=True)
    return table[["model", *[c for c in table.columns if c != "model"]]]
