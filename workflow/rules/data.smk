rule simulate:
    output:
        data="results/{dataset}/data/simulated.csv",
        truth="results/{dataset}/data/truth.json",
    params:
        spec=lambda w: config["datasets"][w.dataset]["simulate"],
        columns=lambda w: hpconfig.dataset_columns(config, w.dataset),
    log:
        "logs/{dataset}/simulate.log",
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
    params:
        settings=dataset_params,
    log:
        "logs/{dataset}/clean.log",
    script:
        "../scripts/clean.py"
