"""Snakemake glue: gather per-model diagnostics into one table and apply the convergence policy."""

from hierpool.errors import ModelError
from hierpool.jobs import run_logged


def main(smk):
    from hierpool.diagnostics import ConvergencePolicy, diagnostics_table, verdict
    from hierpool.io import read_json, write_csv, write_json

    policy = ConvergencePolicy(**dict(smk.params.policy))
    per_model = {m: read_json(p) for m, p in zip(smk.params.models, smk.input.diagnostics)}
    table = diagnostics_table(per_model, policy)
    result = verdict(table, policy)
    print(table.to_string())
    if policy.policy == "fail" and not result["all_passed"]:
        raise ModelError(
            f"convergence policy 'fail': {result['failed_models']}. Raise draws/tune or target_accept in "
            "`sampler`, tighten priors on the site SDs, or set convergence.policy: warn to report instead."
        )
    write_csv(smk.output.table, table)
    write_json(smk.output.verdict, result)


run_logged(snakemake, main)  # noqa: F821
