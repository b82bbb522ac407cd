"""Read a raw multi-site CSV, clean and validate it, and say exactly what was dropped and why.

Real exports contain extra columns, several spellings of "missing", numbers stored as
text, padded or differently-cased site labels and numeric site codes. Cleaning maps the
user's columns to their roles (outcome, group, and where mapped predictor, trials, se),
drops unusable rows and tiny sites with a recorded reason for each, and optionally
centres/scales the predictor. The outcome is checked for what the models' family needs
(`outcome_kind`: continuous, binary 0/1, binomial successes of trials, non-negative counts).
The raw file is only read, never written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hierpool import schema
from hierpool.columns import EXTRA_ROLES, check_columns, mapped_roles
from hierpool.errors import DataError
from hierpool.labels import label_notes, normalise_labels, sort_key
from hierpool.outcomes import OUTCOME_KINDS, _check_outcome_values, binary_outcome
from hierpool.rawfile import preview, read_raw  # noqa: F401  (read_raw: part of this module's API)
from hierpool.values import _is_missing, check_number_format, parse_numeric

_DEFAULTS = schema.defaults("cleaning")


@dataclass(frozen=True)
class CleaningOptions:
    """How to clean: missing values, site-label merging, minimum rows per site, the predictor's transform.

    The config keys' defaults are the config schema's (`hierpool.schema.defaults`).
    ``decimal`` and ``thousands`` come from the dataset's file format, not the ``cleaning`` block.
    ``outcome_kind`` (continuous, binary, binomial, count) is not a config key: it follows from the
    models' family (`hierpool.config.outcome_kind`). ``positive_label`` is the text label coded 1
    of a binary outcome.
    """

    min_obs_per_site: int = _DEFAULTS["min_obs_per_site"]
    center: bool = _DEFAULTS["center"]
    scale: bool = _DEFAULTS["scale"]
    covariates: tuple[str, ...] = tuple(_DEFAULTS["covariates"])
    missing_values: tuple[str, ...] = tuple(_DEFAULTS["missing_values"])
    group_missing_values: tuple[str, ...] = tuple(_DEFAULTS["group_missing_values"])
    merge_case: bool = _DEFAULTS["merge_case"]
    merge_integer_codes: bool = _DEFAULTS["merge_integer_codes"]
    positive_label: str | None = _DEFAULTS["positive_label"]
    max_dropped_share: float = _DEFAULTS["max_dropped_share"]
    decimal: str = "."
    thousands: str | None = None
    outcome_kind: str = "continuous"

    @classmethod
    def from_config(cls, cfg: dict) -> CleaningOptions:
        cfg = dict(cfg)
        for key in ("covariates", "missing_values", "group_missing_values"):
            if key in cfg:
                cfg[key] = tuple(str(v) for v in cfg[key])
        return cls(**cfg)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class CleaningResult:
    data: pd.DataFrame
    summary: dict
    sites: pd.DataFrame
    dropped_rows: pd.DataFrame


def check_dropped_share(
    reason: pd.Series,
    column: pd.Series,
    frame: pd.DataFrame,
    row_number: pd.Series,
    max_share: float,
    source: str,
) -> None:
    """Stop, with the reasons and the first rows, when cleaning would drop more than ``max_share`` of the rows."""
    dropped = reason.notna()
    share = float(dropped.mean())
    if share <= max_share:
        return
    counts = reason[dropped].value_counts()
    first = [
        f"row {row_number[i]} ({reason[i]}: {frame.at[i, column[i]]!r})"
        for i in reason.index[dropped][:5]
    ]
    raise DataError(
        f"{source}: cleaning would drop {int(dropped.sum())} of {len(reason)} rows ({share:.0%}), more than "
        f"max_dropped_share ({max_share:.0%}): {', '.join(f'{n} {why}' for why, n in counts.items())}. First: {'; '.join(first)}. "
        "Fix the file (or the `columns`, `missing_values`, `decimal` settings), or, if dropping them is right, raise "
        "`cleaning.max_dropped_share` for this dataset."
    )


def _numeric_column(
    frame: pd.DataFrame,
    name: str,
    role: str,
    options: CleaningOptions,
    source: str,
    row_number: pd.Series,
    allow_text: bool = False,
):
    """Parse a column to numbers (stopping on numbers in another format); None when ``allow_text`` and it is text.

    A column is text when more than half of its non-missing cells are not numbers.
    """
    numbers, missing, non_numeric = parse_numeric(
        frame[name], options.missing_values, options.decimal, options.thousands
    )
    if options.decimal == "." and not options.thousands:
        check_number_format(frame[name], non_numeric, name, source, row_number)
    if allow_text and 2 * int(non_numeric.sum()) > int((~missing).sum()):
        return None
    if numbers.notna().sum() == 0:
        examples = sorted(set(frame[name].astype(str).str.strip()) - {""})
        raise DataError(
            f"{source}: the {role} column {name!r} has no numeric values (examples: {preview(examples)}). "
            "Map a numeric column, or fix the export (decimal point '.', no units in the cells)."
        )
    return numbers, missing, non_numeric


def clean(
    frame: pd.DataFrame, columns: dict, options: CleaningOptions | None = None, source: str = "data"
) -> CleaningResult:
    """Clean a raw frame (all text) into the tidy data the models use, with a full account of drops.

    Parameters
    ----------
    frame : pandas.DataFrame
        The raw file, every cell text (`read_raw`).
    columns : dict
        Column of each role: outcome and group; predictor, trials and se where the data have them.
    options : CleaningOptions, optional
        How to clean; ``outcome_kind`` says what the outcome must be.
    source : str
        The file's name, for messages.

    Returns
    -------
    CleaningResult
        Tidy data, summary, per-site table and dropped rows.
    """
    options = options or CleaningOptions()
    if options.min_obs_per_site < 1:
        raise DataError(
            f"{source}: min_obs_per_site must be at least 1, got {options.min_obs_per_site}."
        )
    if options.outcome_kind not in OUTCOME_KINDS:
        raise DataError(
            f"{source}: unknown outcome_kind {options.outcome_kind!r}; expected one of {list(OUTCOME_KINDS)}."
        )
    check_columns(frame, columns, source, options.covariates)
    outcome, group, predictor = columns["outcome"], columns["group"], columns.get("predictor")
    n_in = len(frame)
    row_number = pd.Series(np.arange(1, n_in + 1), index=frame.index)

    labels, merges = normalise_labels(
        frame[group], options.group_missing_values, options.merge_case, options.merge_integer_codes
    )
    reason = pd.Series(None, index=frame.index, dtype=object)
    bad_column = pd.Series(None, index=frame.index, dtype=object)

    def mark(mask: pd.Series, why: str, column: str) -> None:
        new = mask & reason.isna()
        reason[new] = why
        bad_column[new] = column

    mark(labels.isna(), "missing group", group)
    parsed: dict[str, pd.Series] = {}
    outcome_info: dict = {"kind": options.outcome_kind, "column": outcome}
    numeric_roles = [(role, name) for role, name in mapped_roles(columns) if role != "group"]
    if options.outcome_kind == "binary":
        parsed[outcome], missing, levels = binary_outcome(
            frame[outcome], options, outcome, source, row_number
        )
        mark(missing, "missing outcome", outcome)
        outcome_info.update(levels)
        numeric_roles = [(role, name) for role, name in numeric_roles if role != "outcome"]
    for role, name in numeric_roles:
        numbers, missing, non_numeric = _numeric_column(
            frame, name, role, options, source, row_number
        )
        mark(missing, f"missing {role}", name)
        mark(non_numeric, f"non-numeric {role}", name)
        parsed[name] = numbers
    _check_outcome_values(parsed, frame, columns, options.outcome_kind, source, row_number)
    covariate_types: dict[str, str] = {}
    for name in options.covariates:
        numeric = _numeric_column(
            frame, name, "covariate", options, source, row_number, allow_text=True
        )
        if numeric is None:
            text = frame[name].astype(str).str.strip()
            missing = _is_missing(text, options.missing_values)
            parsed[name] = text.where(~missing)
            covariate_types[name] = "categorical"
        else:
            parsed[name], missing, non_numeric = numeric
            mark(non_numeric, f"non-numeric {name}", name)
            covariate_types[name] = "numeric"
        mark(missing, f"missing {name}", name)
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
                "reason": ""
                if keep
                else f"fewer than {options.min_obs_per_site} usable observations ({n_usable})",
            }
        )
        if keep:
            kept_sites.append(site)
    sites = pd.DataFrame(site_rows, columns=["site", "n_raw", "n_kept", "status", "reason"])
    sites = sites.sort_values("site", key=lambda s: s.map(sort_key)).reset_index(drop=True)

    small = usable & ~labels.isin(kept_sites)
    mark(small, "site too small", group)
    keep_rows = reason.isna()

    if len(kept_sites) < 2:
        by_size = counts_usable.sort_values(ascending=False)
        listing = sites.assign(
            n_usable=sites["site"].map(lambda site: int(counts_usable.get(site, 0)))
        )
        raise DataError(
            f"{source}: only {len(kept_sites)} site(s) left after cleaning (need at least 2 for a multilevel model) "
            f"of {len(counts_raw)} in the group column {group!r}; usable rows per site, largest first: "
            f"{preview([f'{site} ({n})' for site, n in by_size.items()])}. Check the group column, "
            f"or lower min_obs_per_site (now {options.min_obs_per_site}).",
            details=listing[["site", "n_raw", "n_usable", "reason"]].to_string(index=False),
        )
    check_dropped_share(reason, bad_column, frame, row_number, options.max_dropped_share, source)
    predictor_info, x_model = _predictor_transform(parsed, predictor, keep_rows, options, source)

    tidy = pd.DataFrame({group: labels[keep_rows].astype(str)})
    if predictor:
        tidy[predictor] = x_model
    whole = options.outcome_kind != "continuous"
    tidy[outcome] = (
        parsed[outcome][keep_rows].astype("int64") if whole else parsed[outcome][keep_rows]
    )
    for role in EXTRA_ROLES:
        if columns.get(role):
            values = parsed[columns[role]][keep_rows]
            tidy[columns[role]] = values.astype("int64") if role == "trials" else values
    for name in options.covariates:
        tidy[name] = parsed[name][keep_rows]
    tidy["source_row"] = row_number[keep_rows]
    tidy = tidy.reset_index(drop=True)
    if whole:
        outcome_info.update({"min": int(tidy[outcome].min()), "max": int(tidy[outcome].max())})

    dropped = pd.DataFrame(
        {
            "source_row": row_number[~keep_rows],
            "reason": reason[~keep_rows],
            "column": bad_column[~keep_rows],
            "value": [
                frame.at[i, c] for i, c in zip(frame.index[~keep_rows], bad_column[~keep_rows])
            ],
        }
    ).reset_index(drop=True)

    summary = {
        "source": str(source),
        "columns": dict(mapped_roles(columns)),
        "covariates": covariate_types,
        "outcome": outcome_info,
        "rows_in": n_in,
        "rows_out": int(keep_rows.sum()),
        "rows_dropped": {
            k: int(v) for k, v in dropped["reason"].value_counts().sort_index().items()
        },
        "sites_in": int(len(counts_raw)),
        "sites_kept": len(kept_sites),
        "sites_dropped": [
            {"site": r.site, "n_usable": int(counts_usable.get(r.site, 0)), "reason": r.reason}
            for r in sites.itertuples()
            if r.status == "dropped"
        ],
        "site_counts": {r.site: int(r.n_kept) for r in sites.itertuples() if r.status == "kept"},
        "label_merges": merges,
        "label_rules": {
            "merge_case": options.merge_case,
            "merge_integer_codes": options.merge_integer_codes,
            "group_missing_values": list(options.group_missing_values),
        },
        "notes": label_notes(kept_sites, options, group)
        + _data_notes(outcome_info, tidy, covariate_types),
        "min_obs_per_site": options.min_obs_per_site,
        "max_dropped_share": options.max_dropped_share,
        "predictor": predictor_info,
    }
    return CleaningResult(data=tidy, summary=summary, sites=sites, dropped_rows=dropped)


def _predictor_transform(
    parsed: dict, predictor: str | None, keep_rows: pd.Series, options: CleaningOptions, source: str
) -> tuple[dict, pd.Series | None]:
    """The predictor's summary entry and its values on the model scale (None without a predictor)."""
    if not predictor:
        info = {
            "name": None,
            "column": None,
            "centered": False,
            "scaled": False,
            "center": 0.0,
            "scale": 1.0,
            "min": None,
            "max": None,
            "note": "no predictor column",
        }
        return info, None
    x = parsed[predictor][keep_rows]
    if x.nunique() < 2:
        raise DataError(
            f"{source}: the predictor column {predictor!r} is constant ({float(x.iloc[0]):g}) in the rows kept, "
            "so no slope can be estimated. Map a predictor that varies."
        )
    center = float(x.mean()) if options.center else 0.0
    scale = float(x.std(ddof=1)) if options.scale else 1.0
    info = {
        "name": predictor,
        "column": predictor,
        "centered": options.center,
        "scaled": options.scale,
        "center": center,
        "scale": scale,
        "min": float(x.min()),
        "max": float(x.max()),
        "note": f"model uses ({predictor} - {center:.6g}) / {scale:.6g}",
    }
    return info, (x - center) / scale


def _data_notes(outcome_info: dict, tidy: pd.DataFrame, covariate_types: dict) -> list[str]:
    """Notes for the report: how a binary outcome was coded, and which covariates are categorical."""
    notes = []
    levels = outcome_info.get("levels")
    if levels and levels != {"0": "0", "1": "1"}:
        notes.append(
            f"outcome {outcome_info['column']!r} is coded 1 for {levels['1']!r} and 0 for {levels['0']!r}"
        )
    for name, kind in covariate_types.items():
        if kind == "categorical":
            values = sorted(tidy[name].unique(), key=sort_key)
            notes.append(
                f"covariate {name!r} is categorical, {len(values)} level(s): {preview(values)}"
            )
    return notes


def load_clean(path: str | Path, group: str) -> pd.DataFrame:
    """Read tidy data written by the clean step, keeping site labels as text (``"01"`` stays ``"01"``)."""
    frame = pd.read_csv(path, dtype={group: str}, keep_default_na=False, na_values=[])
    frame[group] = pd.Categorical(
        frame[group], categories=sorted(frame[group].unique(), key=sort_key)
    )
    return frame
