"""Snakemake glue: build one configured Bambi model, fit it, save InferenceData, PSIS-LOO, priors and diagnostics."""

from hierpool.jobs import run_logged


def main(smk):
    from hierpool.calibration import loo_pit
    from hierpool.clean import load_clean
    from hierpool.config import resolve_target_accept
    from hierpool.diagnostics import fit_diagnostics
    from hierpool.fit import fit, save
    from hierpool.io import write_csv, write_json
    from hierpool.loo import save_loo
    from hierpool.models import build_model
    from hierpool.momentmatch import drop_unconstrained, remedy
    from hierpool.priors import priors_used
    from hierpool.summaries import coefficient_table

    spec = dict(smk.params.spec)
    data = load_clean(smk.input.data, smk.params.columns["group"])
    model = build_model(
        spec, data, smk.params.site_sd_prior_scale
    )  # fails here, before sampling, on a bad formula or column
    print(model)
    for note in model.hierpool_notes:
        print("NOTE:", note)
    sampler = resolve_target_accept(
        dict(smk.params.sampler), data[smk.params.columns["group"]].nunique()
    )
    print(
        f"target_accept: {sampler['target_accept']} (configured: {smk.params.sampler['target_accept']})"
    )
    max_moment_match = int(smk.params.max_moment_match)
    idata, loo = fit(model, sampler, cores=smk.threads, keep_unconstrained=max_moment_match > 0)
    matched = remedy(model, idata, loo, max_moment_match)  # high k: the first remedy
    print("moment matching:", matched["note"])
    drop_unconstrained(idata)
    diag = fit_diagnostics(idata)
    pit = loo_pit(model, idata, int(sampler["seed"]) + 3, float(sampler["chunk_mb"]))
    site_loo = leave_one_site_out(
        model, idata, spec["formula"], dict(smk.params.columns), smk.params.site_loo
    )
    save(idata, smk.output.fit)
    save_loo(loo, smk.output.loo, pit=pit, matched=matched)
    write_json(
        smk.output.priors,
        {
            "model": spec["name"],
            "formula": spec["formula"],
            "family": spec["family"],
            "priors": priors_used(model),
            "notes": model.hierpool_notes,
        },
    )
    write_csv(smk.output.site_loo, site_loo)
    write_json(smk.output.diagnostics, {"model": spec["name"], **diag})
    write_csv(smk.output.coefficients, coefficient_table(idata, dict(smk.params.columns)))
    print(diag)


def leave_one_site_out(model, idata, formula: str, columns: dict, on: bool = True):
    """Each site's leave-one-site-out elpd from this fit (hierpool.siteloo), or no rows where it does not apply or is off."""
    import time

    import pandas as pd

    from hierpool import siteloo
    from hierpool.loo import relative_ess

    if not on:
        print("leave-one-site-out from the fit: off (checking.loso_folds: 0)")
        return pd.DataFrame(columns=siteloo.COLUMNS)
    why = siteloo.why_not(model, formula, columns["group"], columns.get("predictor"))
    if why:
        print(
            f"leave-one-site-out from the fit: not here ({why}); refits answer it where it applies"
        )
        return pd.DataFrame(columns=siteloo.COLUMNS)
    start = time.perf_counter()
    table = siteloo.site_loo(
        model, idata.posterior, model.data[columns["group"]], relative_ess(idata.posterior)
    )
    print(
        f"leave-one-site-out from the fit: {len(table)} sites in {time.perf_counter() - start:.1f} s, "
        f"max Pareto k {table['pareto_k'].max():.2f}"
    )
    return table


run_logged(snakemake, main)  # noqa: F821
