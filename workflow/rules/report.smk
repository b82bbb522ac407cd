# The headline numbers and the report assembly read small files: they run in the Snakemake
# process (on a cluster: the login node), not as cluster jobs.
localrules:
    headline,
    timings,
    report,


rule timings:
    input:
        benchmarks=lambda w: dataset_benchmarks(w.dataset),
    output:
        table="results/{dataset}/report/timings.csv",
    log:
        "logs/{dataset}/timings.log",
    conda:
        "../../environment.yml"
    params:
        root=lambda w: f"benchmarks/{w.dataset}",
    script:
        "../scripts/timings.py"


rule headline:
    input:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        fits=analysis_fits,
        compare="results/{dataset}/compare/compare.csv",
        verdict="results/{dataset}/diagnostics/convergence.json",
        analysis=lambda w: analysis_targets(w.dataset),
    output:
        headline="results/{dataset}/report/headline.json",
        changes="results/{dataset}/report/changes.json",
        config="results/{dataset}/report/config_used.json",
        # appended to, never replaced: update() keeps it (and restores it if the job fails)
        history=update("results/{dataset}/history/headlines.jsonl"),
    log:
        "logs/{dataset}/headline.log",
    conda:
        "../../environment.yml"
    params:
        used=lambda w: report_config(w.dataset),
        models=lambda w: analysis_params(w)["models"],
        columns=lambda w: analysis_params(w)["columns"],
        results_dir=lambda w: f"results/{w.dataset}",
    script:
        "../scripts/headline.py"


rule report:
    input:
        qmd="reports/report.qmd",
        # the report's manifest: it reads these files and no others (hierpool.report.outputs.DatasetOutputs)
        results=report_inputs,
    output:
        html="results/{dataset}/report.html",
    log:
        "logs/{dataset}/report.log",
    benchmark:
        "benchmarks/{dataset}/report.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        workdir=lambda w: f"results/{w.dataset}/report/render",
        results_dir=lambda w: f"results/{w.dataset}",
    script:
        "../scripts/report.py"
