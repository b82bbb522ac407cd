# Simulating a dataset takes a second: it runs in the Snakemake process, not as a cluster job.
localrules:
    simulate,


rule simulate:
    output:
        data="results/{dataset}/data/simulated.csv",
        truth="results/{dataset}/data/truth.json",
    log:
        "logs/{dataset}/simulate.log",
    conda:
        "../../environment.yml"
    params:
        spec=lambda w: hpconfig.canonical(config["datasets"][w.dataset]["simulate"]),
        columns=lambda w: hpconfig.canonical(
            hpconfig.dataset_columns(config, w.dataset)
        ),
    script:
        "../scripts/simulate.py"


rule clean:
    input:
        raw=raw_data,
    output:
        data="results/{dataset}/data/clean.csv",
        summary="results/{dataset}/data/cleaning_summary.json",
        sites="results/{dataset}/data/cleaning_sites.csv",
        dropped="results/{dataset}/data/dropped_rows.csv",
    log:
        "logs/{dataset}/clean.log",
    conda:
        "../../environment.yml"
    resources:
        mem_mb=lambda w, input: hpresources.from_input_size_mb(
            hpresources.size_mb(input), 1000, factor=20
        ),
        runtime=10,
    params:
        settings=dataset_params,
        sha256=raw_sha256,
    script:
        "../scripts/clean.py"
