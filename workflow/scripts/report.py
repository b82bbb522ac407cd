"""Snakemake glue: render reports/report.qmd for one dataset into a single self-contained HTML file."""

from hierpool.jobs import run_logged


def main(smk):
    from hierpool.report.render import render_rule_report

    render_rule_report(smk, smk.wildcards.dataset, dataset=smk.wildcards.dataset)


run_logged(snakemake, main)  # noqa: F821
