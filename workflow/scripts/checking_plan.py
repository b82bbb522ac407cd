"""Snakemake glue: the refits a model's checking needs (hierpool.refitplan): loo_plan or loso_plan."""

from hierpool.jobs import run_logged


def main(smk):
    from hierpool import refitplan
    from hierpool.io import write_json

    settings = dict(smk.params.settings)
    if smk.rule == "loo_plan":
        pareto_k, n_samples = refitplan.read_pareto_k(smk.input.loo)
        plan = refitplan.loo_plan(
            pareto_k,
            n_samples,
            int(settings["max_refits"]),
            int(settings["kfold_folds"]),
            int(settings["seed"]),
        )
    else:
        from pandas import read_csv

        from hierpool.clean import load_clean
        from hierpool.roles import model_roles

        columns = dict(smk.params.columns)
        data = load_clean(smk.input.data, columns["group"])
        role = model_roles(smk.params.formula, columns["group"], columns.get("predictor")).role
        _, n_samples = refitplan.read_pareto_k(smk.input.loo)
        plan = refitplan.loso_plan(
            role,
            data[columns["group"]],
            int(settings["loso_folds"]),
            int(settings["seed"]),
            estimate=read_csv(smk.input.site_loo, dtype={"site": str}),
            n_samples=n_samples,
        )
    plan["model"] = smk.wildcards.model
    plan["batches"] = refitplan.batches(plan["units"], int(settings["refits_per_job"]))
    write_json(smk.output.plan, plan)
    print({k: v for k, v in plan.items() if k not in ("site_folds", "batches", "refitted")})


run_logged(snakemake, main)  # noqa: F821
