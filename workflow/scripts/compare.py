"""Snakemake glue: each model's PSIS-LOO with its high-k observations refitted exactly (or by K-fold), Pareto-k table, stacking comparison and plot."""

from hierpool.jobs import run_logged


def main(smk):
    import json
    from pathlib import Path

    import pandas as pd

    from hierpool import compare, crossval
    from hierpool.clean import load_clean
    from hierpool.figures import loo_comparison
    from hierpool.figures.style import save_figure
    from hierpool.io import write_csv
    from hierpool.loo import load_loo, load_moment_match

    group = smk.params.columns["group"]
    data = load_clean(smk.input.data, group)
    refits = {}
    for path in smk.input.refits:
        batch = json.loads(Path(path).read_text())
        refits.setdefault(batch["model"], []).extend(batch["units"])
    loos, reliable, rows, bad = {}, {}, [], []
    for model, loo_path, plan_path in zip(smk.params.models, smk.input.loos, smk.input.plans):
        psis = load_loo(loo_path)
        plan = json.loads(Path(plan_path).read_text())
        matched = load_moment_match(loo_path)
        loos[model], methods = crossval.remedied_loo(psis, plan, refits.get(model, []), matched)
        rows.append(
            {
                **compare.loo_summary(model, psis, loos[model], methods),
                **crossval.refit_quality(refits.get(model, [])),
                "moment_matching": matched["note"] if matched else "off",
            }
        )
        reliable[model] = rows[-1]["loo_reliable"]
        bad.append(compare.bad_observations(model, psis, data, group, loos[model], methods))
    table = compare.compare(loos, reliable)
    write_csv(smk.output.loo, pd.DataFrame(rows))
    write_csv(smk.output.compare, table)
    write_csv(smk.output.bad_k, pd.concat(bad, ignore_index=True))
    save_figure(loo_comparison(table, smk.wildcards.dataset), smk.output.plot)
    print(pd.DataFrame(rows)[["model", "elpd_psis", "elpd_loo", "elpd_method", "k_high"]])
    print(table.to_string())


run_logged(snakemake, main)  # noqa: F821
