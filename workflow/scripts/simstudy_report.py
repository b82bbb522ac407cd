"""Snakemake glue: render reports/simulation_study.qmd into one self-contained HTML file."""

from hierpool.jobs import run_logged


def main(smk):
    from hierpool.report.render import render_rule_report

    render_rule_report(smk, "simulation study")


run_logged(snakemake, main)  # noqa: F821
