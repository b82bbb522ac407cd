"""Snakemake glue: leave-one-site-out elpd per model and per site (the fits' estimates and the refits), with its figure."""

from hierpool.jobs import run_logged


def main(smk):
    import json
    from pathlib import Path

    import pandas as pd

    from hierpool import crossval
    from hierpool.figures.checking import loso_sites
    from hierpool.figures.style import model_colors, save_figure
    from hierpool.io import write_csv
    from hierpool.roles import model_roles

    refits = {}
    for path in smk.input.refits:
        batch = json.loads(Path(path).read_text())
        refits.setdefault(batch["model"], []).extend(batch["units"])
    plans = {m: json.loads(Path(p).read_text()) for m, p in zip(smk.params.models, smk.input.plans)}
    estimates = {
        m: pd.read_csv(p, dtype={"site": str})
        for m, p in zip(smk.params.models, smk.input.estimates)
    }
    sites = pd.concat(
        [
            crossval.loso_sites(m, plans[m], refits.get(m, []), estimates[m])
            for m in smk.params.models
        ],
        ignore_index=True,
    )
    table = crossval.loso_summary(sites, plans, refits)
    write_csv(smk.output.table, table)
    write_csv(smk.output.sites, sites)
    columns = dict(smk.params.columns)
    roles = {
        m: model_roles(smk.params.formulas[m], columns["group"], columns.get("predictor")).role
        for m in smk.params.models
    }
    save_figure(loso_sites(sites, model_colors(roles), smk.wildcards.dataset), smk.output.plot)
    print(table.to_string())


run_logged(snakemake, main)  # noqa: F821
