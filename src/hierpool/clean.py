"""Read a raw multi-site CSV, clean and validate it, and say exactly what was dropped and why.

Real exports contain extra columns, several spellings of "missing", numbers stored as
text, padded or differently-cased site labels and numeric site codes. Cleaning maps the
user's columns to the three roles (outcome, predictor, group), drops unusable rows and
tiny sites with a recorded reason for each, and optionally centres/scales the predictor.
The raw file is only read, never written.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hierpool.errors import DataError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", ".", "#n/a", "missing"})
ROLES = ("outcome", "predictor", "group")


@dataclass(frozen=True)
class CleaningOptions:
    """How to clean: minimum rows per site, and how to transform the predictor."""

    min_obs_per_site: int = 2
    center: bool = True
    scale: bool = False
    covariates: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, cfg: dict) -> "CleaningOptions":
        cfg = dict(cfg)
        cfg["covariates"] = tuple(cfg.get("covariates", ()))
        return cls(**cfg)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_raw(path: str | Path, sep: str = ",") -> pd.DataFrame:
    """Read a CSV with every cell as text, after checking it exists, is not empty and has unique column names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Check the dataset's `path` in the config "
            "(relative paths start at the directory you run snakemake from)."
        )
    text_start = path.read_text(encoding="utf-8-sig", errors="replace")[:65536]  # -sig: drop an Excel BOM
    if not text_start.strip():
        raise DataError(f"{path}: the file is empty. Export the data again with a header row and one row per observation.")
    header = next(csv.reader([text_start.splitlines()[0]], delimiter=sep))
    names = [name.strip() for name in header]
    seen: dict[str, int] = {}
    for name in names:
        if name:
            seen[name] = seen.get(name, 0) + 1
    duplicated = sorted(name for name, count in seen.items() if count > 1)
    if duplicated:
        raise DataError(
            f"{path}: duplicate column names {duplicated}. Rename them in the file (or a copy of it) "
            "so that every column has a unique name."
        )
    frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    frame.columns = names
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows.")
    return frame


def _is_missing(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(MISSING_TOKENS)


def parse_numeric(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse text to floats; return (numbers, missing mask, non-numeric mask)."""
    text = values.astype(str).str.strip()
    missing = _is_missing(text)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype(float)
    bad = ~missing & ~np.isfinite(numbers)  # text that is not a number, and inf
    return numbers.where(~bad), missing, bad


def _label_key(label: str) -> str:
    """Key under which site labels are considered the same site: case-, space- and number-format-insensitive."""
    try:
        number = float(label)
    except ValueError:
        return label.casefold()
    if np.isfinite(number) and number == int(number):
        return str(int(number))
    return repr(number)


def normalise_labels(values: pd.Series) -> tuple[pd.Series, dict[str, list[str]]]:
    """Strip and collapse whitespace, and merge labels that differ only in case or number format.

    Each site is shown under its most frequent spelling. Returns the labels (NaN where
    missing) and the merges made, as {shown label: [other spellings]}.
    """
    text = values.astype(str).map(lambda s: re.sub(r"\s+", " ", s.strip()))
    missing = _is_missing(text)
    present = text[~missing]
    keys = present.map(_label_key)
    shown: dict[str, str] = {}
    merges: dict[str, list[str]] = {}
    for key, group in present.groupby(keys, sort=False):
        counts = group.value_counts(sort=False)
        best = counts[counts == counts.max()].index[0]
        shown[key] = best
        others = sorted(set(counts.index) - {best})
        if others:
            merges[best] = others
    labels = pd.Series(np.nan, index=values.index, dtype=object)
    labels[~missing] = keys.map(shown)
    return labels, merges


@dataclass
class CleaningResult:
    data: pd.DataFrame
    summary: dict
    sites: pd.DataFrame
    dropped_rows: pd.DataFrame


def check_columns(frame: pd.DataFrame, columns: dict, source: str, covariates=()) -> None:
    missing_roles = [role for role in ROLES if not columns.get(role)]
    if missing_roles:
        raise DataError(f"{source}: the column mapping has no {missing_roles}; set columns.outcome, columns.predictor and columns.group.")
    wanted = [(role, columns[role]) for role in ROLES] + [("covariate", c) for c in covariates]
    for role, name in wanted:
        if name not in frame.columns:
            close = [c for c in frame.columns if c.lower() == str(name).lower()]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{source}: the {role} column {name!r} is not in the file.{hint} "
                f"Columns that exist: {[c for c in frame.columns if c]}. Fix the dataset's `columns` mapping in the config."
            )


def clean(frame: pd.DataFrame, columns: dict, options: CleaningOptions | None = None, source: str = "data") -> CleaningResult:
    """Clean a raw frame (all text) into the tidy data the models use, with a full account of drops."""
    options = options or CleaningOptions()
    if options.min_obs_per_site < 1:
        raise DataError(f"{source}: min_obs_per_site must be at least 1, got {options.min_obs_per_site}.")
    check_columns(frame, columns, source, options.covariates)
    outcome, predictor, group = (columns[role] for role in ROLES)
    n_in = len(frame)
    row_number = pd.Series(np.arange(1, n_in + 1), index=frame.index)

    labels, merges = normalise_labels(frame[group])
    reason = pd.Series(None, index=frame.index, dtype=object)
    bad_column = pd.Series(None, index=frame.index, dtype=object)

    def mark(mask: pd.Series, why: str, column: str) -> None:
        new = mask & reason.isna()
        reason[new] = why
        bad_column[new] = column

    mark(labels.isna(), "missing group", group)
    parsed: dict[str, pd.Series] = {}
    for role, name in [("outcome", outcome), ("predictor", predictor)] + [("covariate", c) for c in options.covariates]:
        numbers, missing, non_numeric = parse_numeric(frame[name])
        if numbers.notna().sum() == 0:
            examples = sorted(set(frame[name].astype(str).str.strip()) - {""})[:5]
            raise DataError(
                f"{source}: the {role} column {name!r} has no numeric values (examples: {examples}). "
                "Map a numeric column, or fix the export (decimal point '.', no units in the cells)."
            )
        mark(missing, f"missing {role}" if role != "covariate" else f"missing {name}", name)
        mark(non_numeric, f"non-numeric {role}" if role != "covariate" else f"non-numeric {name}", name)
        parsed[name] = numbers

    usable = reason.isna()
    counts_raw = labels.value_counts(sort=False)
    counts_usable = labels[usable].value_counts(sort=False)
    site_rows = []
    kept_sites = []
    for site in counts_raw.index:
        n_usable = int(counts_usable.get(site, 0))
        keep = n_usable >= options.min_obs_per_site
        site_rows.append(
            {
                "site": site,
                "n_raw": int(counts_raw[site]),
                "n_kept": n_usable if keep else 0,
                "status": "kept" if keep else "dropped",
                "reason": "" if keep else f"fewer than {options.min_obs_per_site} usable observations ({n_usable})",
            }
        )
        if keep:
            kept_sites.append(site)
    sites = pd.DataFrame(site_rows, columns=["site", "n_raw", "n_kept", "status", "reason"])
    sites = sites.sort_values("site", key=lambda s: s.map(_sort_key)).reset_index(drop=True)

    small = usable & ~labels.isin(kept_sites)
    mark(small, "site too small", group)
    keep_rows = reason.isna()

    if len(kept_sites) < 2:
        raise DataError(
            f"{source}: only {len(kept_sites)} site(s) left after cleaning (need at least 2 for a multilevel model). "
            f"Sites and usable rows: {dict(counts_usable)}. Check the group column {group!r}, "
            f"or lower min_obs_per_site (now {options.min_obs_per_site})."
        )
    x = parsed[predictor][keep_rows]
    if x.nunique() < 2:
        raise DataError(
            f"{source}: the predictor column {predictor!r} is constant ({x.iloc[0]!r}) in the rows kept, "
            "so no slope can be estimated. Map a predictor that varies."
        )
    center = float(x.mean()) if options.center else 0.0
    scale = float(x.std(ddof=1)) if options.scale else 1.0

    tidy = pd.DataFrame(
        {
            group: labels[keep_rows].astype(str),
            predictor: (x - center) / scale,
            outcome: parsed[outcome][keep_rows],
        }
    )
    for name in options.covariates:
        tidy[name] = parsed[name][keep_rows]
    tidy["source_row"] = row_number[keep_rows]
    tidy = tidy.reset_index(drop=True)

    dropped = pd.DataFrame(
        {
            "source_row": row_number[~keep_rows],
            "reason": reason[~keep_rows],
            "column": bad_column[~keep_rows],
            "value": [frame.at[i, c] for i, c in zip(frame.index[~keep_rows], bad_column[~keep_rows])],
        }
    ).reset_index(drop=True)

    summary = {
        "source": str(source),
        "columns": {role: columns[role] for role in ROLES},
        "covariates": list(options.covariates),
        "rows_in": n_in,
        "rows_out": int(keep_rows.sum()),
        "rows_dropped": {k: int(v) for k, v in dropped["reason"].value_counts().sort_index().items()},
        "sites_in": int(len(counts_raw)),
        "sites_kept": len(kept_sites),
        "sites_dropped": [
            {"site": r.site, "n_usable": int(counts_usable.get(r.site, 0)), "reason": r.reason}
            for r in sites.itertuples() if r.status == "dropped"
        ],
        "site_counts": {r.site: int(r.n_kept) for r in sites.itertuples() if r.status == "kept"},
        "label_merges": merges,
        "min_obs_per_site": options.min_obs_per_site,
        "predictor": {
            "name": predictor,
            "centered": options.center,
            "scaled": options.scale,
            "center": center,
            "scale": scale,
            "min": float(x.min()),
            "max": float(x.max()),
            "note": f"model uses ({predictor} - {center:.6g}) / {scale:.6g}",
        },
    }
    return CleaningResult(data=tidy, summary=summary, sites=sites, dropped_rows=dropped)


def _sort_key(label: str):
    """Natural sort: numeric codes by value, then text labels."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label.casefold())


def load_clean(path: str | Path, group: str) -> pd.DataFrame:
    """Read tidy data written by the clean step, keeping site labels as text (``"01"`` stays ``"01"``)."""
    frame = pd.read_csv(path, dtype={group: str}, keep_default_na=False, na_values=[])
    frame[group] = pd.Categorical(frame[group], categories=sorted(frame[group].unique(), key=_sort_key))
    return frame
