"""Snakemake glue: one batch of cross-validation refits (hierpool.crossval.run_batch) of one model."""

from hierpool.jobs import run_logged


def main(smk):
    import json
    from pathlib import Path

    from hierpool import crossval
    from hierpool.clean import load_clean
    from hierpool.config import resolve_target_accept
    from hierpool.io import write_json
    from hierpool.models import build_model

    plan = json.loads(Path(smk.input.plan).read_text())
    units = plan["batches"][int(smk.wildcards.batch)]
    group = smk.params.columns["group"]
    data = load_clean(smk.input.data, group)
    model = build_model(dict(smk.params.spec), data, smk.params.site_sd_prior_scale)
    sampler = resolve_target_accept(dict(smk.params.sampler), data[group].nunique())
    print(f"{smk.wildcards.kind} refits of {smk.wildcards.model}: {', '.join(units)}")
    results = crossval.run_batch(model, sampler, plan, units, data[group], cores=smk.threads)
    for result in results:
        print(result["unit"], f"{len(result['rows'])} rows held out", result["diagnostics"])
    write_json(
        smk.output.refits,
        {"model": smk.wildcards.model, "kind": smk.wildcards.kind, "units": results},
    )


run_logged(snakemake, main)  # noqa: F821
