"""Snakemake glue: the report's headline numbers, and what changed since the previous run."""

from pathlib import Path

from hierpool.smk import run_logged


def main(smk):
    from hierpool import report as rp
    from hierpool.io import write_json

    dataset = smk.wildcards.dataset
    outputs = rp.DatasetOutputs(Path(smk.input.cleaning).parents[1])
    current = rp.headline(outputs, dataset)
    history = Path(smk.output.history)  # an update() output: Snakemake keeps the previous runs' lines
    previous = rp.previous_headline(history, current)
    write_json(smk.output.headline, current)
    write_json(smk.output.changes, rp.changes(previous, current))
    write_json(smk.output.config, dict(smk.params.used))
    rp.append_history(history, current)
    print(current)


run_logged(snakemake, main)  # noqa: F821
