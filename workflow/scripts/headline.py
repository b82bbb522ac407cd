"""Snakemake glue: the report's headline numbers, and what changed since the previous run."""

from pathlib import Path

from hierpool.jobs import load_analysis, run_logged


def main(smk):
    from hierpool.io import write_json
    from hierpool.report import headline, outputs

    job = load_analysis(smk)
    results = outputs.DatasetOutputs(Path(smk.params.results_dir))
    current = headline.headline(results, job.dataset, job.fits, job.columns, job.data)
    history = Path(
        smk.output.history
    )  # an update() output: Snakemake keeps the previous runs' lines
    previous = headline.previous_headline(history, current)
    write_json(smk.output.headline, current)
    write_json(smk.output.changes, headline.changes(previous, current))
    write_json(smk.output.config, dict(smk.params.used))
    headline.append_history(history, current)
    print(current)


run_logged(snakemake, main)  # noqa: F821
