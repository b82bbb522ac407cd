"""Snakemake glue: the simulation study's findings (JSON and Markdown), every number computed from the summary tables."""

from hierpool.smk import run_logged


def main(smk):
    import pandas as pd

    from hierpool.io import atomic_write, write_json
    from hierpool.simstudy import findings, findings_markdown

    tables = {name: pd.read_csv(getattr(smk.input, name)) for name in ("mse", "mse_by_size", "coverage", "tau")}
    result = findings(tables, dict(smk.params.study), max(smk.params.levels))
    write_json(smk.output.json, result)
    text = findings_markdown(result)
    atomic_write(smk.output.md, lambda p: p.write_text(text))
    print(text)


run_logged(snakemake, main)  # noqa: F821
