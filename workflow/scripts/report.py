"""Snakemake glue: render reports/report.qmd for one dataset into a single self-contained HTML file."""

import sys
from pathlib import Path

from hierpool.smk import run_logged


def main(smk):
    from hierpool.render import render_report

    project = Path.cwd()
    params = {
        "dataset": smk.wildcards.dataset,
        "results_dir": str((project / smk.params.results_dir).resolve()),
        "project_dir": str(project.resolve()),
    }
    result = render_report(Path(smk.input.qmd), Path(smk.output.html), params, Path(smk.params.workdir))
    print(result.message)
    print(f"{smk.wildcards.dataset}: {result.message}", file=sys.__stderr__)


run_logged(snakemake, main)  # noqa: F821
