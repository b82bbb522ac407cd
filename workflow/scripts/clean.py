"""Snakemake glue: clean one dataset's raw CSV into tidy data plus a cleaning summary."""

from hierpool.clean import CleaningOptions, clean, file_sha256, read_raw
from hierpool.columns import mapped_columns
from hierpool.io import write_csv, write_json
from hierpool.jobs import run_logged


def main(smk):
    settings = dict(smk.params.settings)
    fmt, columns = dict(settings["format"]), dict(settings["columns"])
    options = CleaningOptions.from_config(
        {
            **settings["cleaning"],
            "decimal": fmt["decimal"],
            "thousands": fmt["thousands"],
            "outcome_kind": settings.get(
                "outcome_kind", "continuous"
            ),  # from the models' family (hpconfig.outcome_kind)
        }
    )
    raw_path = smk.input.raw
    wanted = mapped_columns(columns, options.covariates)
    raw = read_raw(raw_path, columns=wanted, sep=fmt["sep"], encoding=fmt["encoding"])
    result = clean(raw, columns=columns, options=options, source=raw_path)
    result.summary["sha256"] = file_sha256(raw_path)
    result.summary["dataset"] = smk.wildcards.dataset
    write_csv(smk.output.data, result.data)
    write_csv(smk.output.sites, result.sites)
    write_csv(smk.output.dropped, result.dropped_rows)
    write_json(smk.output.summary, result.summary)
    s = result.summary
    print(f"{raw_path}: {s['rows_in']} rows in, {s['rows_out']} kept; dropped {s['rows_dropped']}")
    print(
        f"sites: {s['sites_kept']} kept of {s['sites_in']}; dropped {len(s['sites_dropped'])} (listed in {smk.output.sites})"
    )
    for note in s["notes"]:
        print("NOTE:", note)


run_logged(snakemake, main)  # noqa: F821
