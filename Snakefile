# Bayesian multilevel regression for multi-site data, driven by Bambi formulas.
# Run everything:  snakemake --cores 4    (or: python3 tasks.py run)


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/simulation_study.smk"


rule all:
    default_target: True
    input:
        all_targets(),
