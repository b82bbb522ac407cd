"""One dataset's results as the report rule declares them (its manifest), and the jobs' timings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hierpool.io import read_json


@dataclass(frozen=True)
class DatasetOutputs:
    """Paths of one dataset's results, as the workflow lays them out.

    With ``declared`` (the report rule's manifest: paths relative to ``root``) every path asked
    for must be declared: the report cannot read a file its rule does not list as an input.
    """

    root: Path
    declared: frozenset | None = None

    @classmethod
    def from_manifest(cls, root: Path, manifest: str | Path | None) -> DatasetOutputs:
        """The outputs of ``root`` restricted to the files listed in the manifest JSON (none given: all)."""
        if not manifest:
            return cls(Path(root))
        return cls(Path(root), frozenset(json.loads(Path(manifest).read_text())["files"]))

    def path(self, *parts: str) -> Path:
        relative = "/".join(parts)
        if self.declared is not None and relative not in self.declared:
            raise KeyError(
                f"the report reads {relative!r}, which its rule does not declare (workflow/rules/report.smk)"
            )
        return self.root.joinpath(*parts)

    def declares(self, *parts: str) -> bool:
        return self.declared is None or "/".join(parts) in self.declared

    def read_csv(self, *parts: str) -> pd.DataFrame | None:
        """The table, or None where it is not declared (a stage that does not apply) or absent."""
        if not self.declares(*parts):
            return None
        p = self.path(*parts)
        return pd.read_csv(p, keep_default_na=False, na_values=[""]) if p.is_file() else None

    def read_json(self, *parts: str):
        if not self.declares(*parts):
            return None
        p = self.path(*parts)
        return read_json(p) if p.is_file() else None


def timings_table(paths, root) -> pd.DataFrame:
    """Wall time (s) and peak resident memory (MB) of each job, from Snakemake's ``benchmark:`` files.

    ``stage`` is the file's folder or name under ``root`` (``fit``, ``compare``, ...), ``job``
    the model for a fit.
    """
    rows = []
    for path in paths:
        relative = Path(path).relative_to(root)
        bench = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "stage": relative.parts[0].removesuffix(".tsv"),
                "job": relative.stem if len(relative.parts) > 1 else "",
                "wall_s": float(bench["s"].iloc[-1]),
                "peak_rss_mb": float(pd.to_numeric(bench["max_rss"], errors="coerce").iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["stage", "job", "wall_s", "peak_rss_mb"])


def manifest_text(root: Path, files) -> str:
    """The report's manifest (JSON): every declared input under ``root``, as paths relative to it."""
    root = Path(root).resolve()
    listed = sorted(
        str(Path(f).resolve().relative_to(root))
        for f in files
        if Path(f).resolve().is_relative_to(root)
    )
    return json.dumps({"root": str(root), "files": listed}, indent=1)
