# Simulation study: when does partial pooling win? Not part of `all`; run it with
#   snakemake simulation_study --cores 4                                     (default grid)
#   snakemake simulation_study --cores 2 --config simulation_study='{grid: quick}'
# One job per grid cell and replicate (a Snakemake Paramspace over tau, design, n_sites,
# replicate), then summary tables, figures, the findings as numbers (findings.json) and the
# report that states them in words (reports/simulation_study.qmd). Settings: `simulation_study:` in the
# config (config/README.md); the logic is in src/hierpool/simstudy/.

import os

from snakemake.utils import Paramspace

from hierpool import schema as hpschema
from hierpool import simstudy

# A config without the block (e.g. a user's own file with --replace-workflow-config): every key
# takes its schema default. The rest of the config was validated in common.smk.
if "simulation_study" not in config:
    config["simulation_study"] = hpschema.defaults("simulation_study")

try:
    SIMSTUDY = simstudy.study_settings(config)
except ConfigError as err:
    raise WorkflowError(f"config error: {err}")

SIMSTUDY_SPACE = Paramspace(simstudy.grid_frame(SIMSTUDY["grid"]), param_sep="~")
SIMSTUDY_DIR = "results/simulation_study"
SIMSTUDY_TABLES = ["replicates", "sites", "mse", "mse_by_size", "coverage", "tau"]


# The findings (a few small tables) and the report assembly run in the Snakemake process
# (on a cluster: the login node); the replicates fan out as cluster jobs.
localrules:
    simulation_study,
    simstudy_findings,
    simstudy_report,


rule simulation_study:
    input:
        f"{SIMSTUDY_DIR}/report.html",
        f"{SIMSTUDY_DIR}/findings.json",
        expand(f"{SIMSTUDY_DIR}/summary/{{name}}.csv", name=SIMSTUDY_TABLES),
        expand(
            f"{SIMSTUDY_DIR}/figures/{{name}}.png",
            name=["mse_vs_tau", "shrinkage_vs_n", "fb_vs_eb", "coverage"],
        ),


rule simstudy_replicate:
    output:
        sites=f"{SIMSTUDY_DIR}/replicates/{SIMSTUDY_SPACE.wildcard_pattern}/sites.csv",
        record=f"{SIMSTUDY_DIR}/replicates/{SIMSTUDY_SPACE.wildcard_pattern}/replicate.json",
    log:
        f"logs/simulation_study/replicates/{SIMSTUDY_SPACE.wildcard_pattern}.log",
    benchmark:
        f"benchmarks/simulation_study/replicates/{SIMSTUDY_SPACE.wildcard_pattern}.tsv"
    wildcard_constraints:
        tau=r"[0-9][0-9.eE+-]*",
        design=r"[A-Za-z][A-Za-z0-9_-]*",
        n_sites=r"[0-9]+",
        replicate=r"[0-9]+",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        setup=lambda w: hpconfig.canonical(
            simstudy.replicate_setup(SIMSTUDY, SIMSTUDY_SPACE.instance(w))
        ),
    script:
        "../scripts/simstudy_replicate.py"


rule simstudy_aggregate:
    input:
        sites=expand(
            f"{SIMSTUDY_DIR}/replicates/{{cell}}/sites.csv",
            cell=SIMSTUDY_SPACE.instance_patterns,
        ),
        records=expand(
            f"{SIMSTUDY_DIR}/replicates/{{cell}}/replicate.json",
            cell=SIMSTUDY_SPACE.instance_patterns,
        ),
    output:
        **{name: f"{SIMSTUDY_DIR}/summary/{name}.csv" for name in SIMSTUDY_TABLES},
    log:
        "logs/simulation_study/aggregate.log",
    benchmark:
        "benchmarks/simulation_study/aggregate.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        grid=SIMSTUDY["grid_name"],
        levels=SIMSTUDY["levels"],
    script:
        "../scripts/simstudy_aggregate.py"


rule simstudy_plots:
    input:
        mse=f"{SIMSTUDY_DIR}/summary/mse.csv",
        sites=f"{SIMSTUDY_DIR}/summary/sites.csv",
        coverage=f"{SIMSTUDY_DIR}/summary/coverage.csv",
    output:
        mse=f"{SIMSTUDY_DIR}/figures/mse_vs_tau.png",
        shrinkage=f"{SIMSTUDY_DIR}/figures/shrinkage_vs_n.png",
        fb_vs_eb=f"{SIMSTUDY_DIR}/figures/fb_vs_eb.png",
        coverage=f"{SIMSTUDY_DIR}/figures/coverage.png",
    log:
        "logs/simulation_study/plots.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        levels=SIMSTUDY["levels"],
    script:
        "../scripts/simstudy_plots.py"


rule simstudy_findings:
    input:
        mse=f"{SIMSTUDY_DIR}/summary/mse.csv",
        mse_by_size=f"{SIMSTUDY_DIR}/summary/mse_by_size.csv",
        coverage=f"{SIMSTUDY_DIR}/summary/coverage.csv",
        tau=f"{SIMSTUDY_DIR}/summary/tau.csv",
    output:
        json=f"{SIMSTUDY_DIR}/findings.json",
    log:
        "logs/simulation_study/findings.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        study=hpconfig.canonical(simstudy.study_record(SIMSTUDY)),
        levels=SIMSTUDY["levels"],
    script:
        "../scripts/simstudy_findings.py"


rule simstudy_report:
    input:
        qmd="reports/simulation_study.qmd",
        findings=f"{SIMSTUDY_DIR}/findings.json",
        tables=expand(f"{SIMSTUDY_DIR}/summary/{{name}}.csv", name=SIMSTUDY_TABLES),
        figures=expand(
            f"{SIMSTUDY_DIR}/figures/{{name}}.png",
            name=["mse_vs_tau", "shrinkage_vs_n", "fb_vs_eb", "coverage"],
        ),
    output:
        html=f"{SIMSTUDY_DIR}/report.html",
    log:
        "logs/simulation_study/report.log",
    benchmark:
        "benchmarks/simulation_study/report.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        workdir=lambda w, output: os.path.join(
            os.path.dirname(output.html), "report_render"
        ),
        results_dir=lambda w, input: os.path.dirname(input.findings),
    script:
        "../scripts/simstudy_report.py"
