"""Snakemake glue: the report's headline numbers, and what changed since the previous run."""

from pathlib import Path

from hierpool.smk import load_analysis, run_logged


def main(smk):
    from hierpool import report as rp
    from hierpool.io import write_json

    job = load_analysis(smk)
    outputs = rp.DatasetOutputs(Path(smk.params.results_dir))
    current = rp.headline(outputs, job.dataset, job.fits, job.columns, job.data)
    history = Path(
        smk.output.history
    )  # an update() output: Snakemake keeps the previous runs' lines
    previous = rp.previous_headline(history, current)
    write_json(smk.output.headline, current)
    write_json(smk.output.changes, rp.changes(previous, current))
    write_json(smk.output.config, dict(smk.params.used))
    rp.append_history(history, current)
    print(current)


run_logged(snakemake, main)  # noqa: F821
