"""Snakemake glue: simulate a multi-site dataset and write its data CSV and truth JSON."""

from hierpool.io import write_csv, write_json
from hierpool.jobs import run_logged
from hierpool.simulate import SimulationSpec, simulate


def main(smk):
    spec = SimulationSpec.from_config(dict(smk.params.spec))
    data, truth = simulate(spec, columns=dict(smk.params.columns))
    write_csv(smk.output.data, data, float_format="%.6f")
    write_json(smk.output.truth, truth)
    print(f"simulated {len(data)} rows in {spec.n_sites} sites (seed {spec.seed})")


run_logged(snakemake, main)  # noqa: F821
