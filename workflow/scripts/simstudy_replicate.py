"""Snakemake glue: one replicate of the simulation study (simulate, four estimators, score)."""

from hierpool.jobs import run_logged


def main(smk):
    from hierpool.io import write_csv, write_json
    from hierpool.simstudy import run_replicate

    setup = dict(smk.params.setup)
    print(f"replicate: {setup}")
    sites, record = run_replicate(setup, cores=smk.threads)
    write_csv(smk.output.sites, sites, float_format="%.8g")
    write_json(smk.output.record, record)
    print(sites.to_string(max_rows=40))
    print(
        {
            k: v
            for k, v in record.items()
            if k.startswith(("mse_", "coverage_", "fb_tau", "eb_tau", "divergences"))
        }
    )


run_logged(snakemake, main)  # noqa: F821
