"""Snakemake glue: the per-model PSIS-LOO (computed by the fit jobs), Pareto-k diagnostics, stacking comparison table and plot."""

from hierpool.smk import run_logged


def main(smk):
    import pandas as pd

    from hierpool import compare as cmp
    from hierpool.clean import load_clean
    from hierpool.io import write_csv
    from hierpool.loo import load_loo
    from hierpool.plots import loo_comparison, save_figure

    group = smk.params.columns["group"]
    data = load_clean(smk.input.data, group)
    loos, rows, bad = {}, [], []
    for model, path in zip(smk.params.models, smk.input.loos):
        loos[model] = load_loo(path)
        rows.append(cmp.loo_summary(model, loos[model]))
        bad.append(cmp.bad_observations(model, loos[model], data, group))
    table = cmp.compare(loos)
    write_csv(smk.output.loo, pd.DataFrame(rows))
    write_csv(smk.output.compare, table)
    write_csv(smk.output.bad_k, pd.concat(bad, ignore_index=True))
    save_figure(loo_comparison(table, smk.wildcards.dataset), smk.output.plot)
    print(table.to_string())


run_logged(snakemake, main)  # noqa: F821
