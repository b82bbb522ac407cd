"""Read a raw multi-site CSV, clean and validate it, and say exactly what was dropped and why.

Real exports contain extra columns, several spellings of "missing", numbers stored as
text, padded or differently-cased site labels and numeric site codes. Cleaning maps the
user's columns to the three roles (outcome, predictor, group), drops unusable rows and
tiny sites with a recorded reason for each, and optionally centres/scales the predictor.
The raw file is only read, never written.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hierpool.errors import DataError
from hierpool.rawfile import preview, read_raw  # noqa: F401  (read_raw: part of this module's API)

MISSING_VALUES = ("", "NA", "N/A", "NaN", "NULL", ".", "#N/A", "missing")
ROLES = ("outcome", "predictor", "group")
_INTEGER_CODE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]*,[0-9]+(?:[eE][+-]?[0-9]+)?")
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:[,.' ][0-9]{3})+(?:[.,][0-9]+)?")


@dataclass(frozen=True)
class CleaningOptions:
    """How to clean: missing values, site-label merging, minimum rows per site, the predictor's transform.

    The defaults here equal the config schema's (`workflow/schemas/config.schema.yaml`).
    """

    min_obs_per_site: int = 2
    center: bool = True
    scale: bool = False
    covariates: tuple[str, ...] = field(default_factory=tuple)
    missing_values: tuple[str, ...] = MISSING_VALUES
    group_missing_values: tuple[str, ...] = ("",)
    merge_case: bool = True
    merge_integer_codes: bool = True
    max_dropped_share: float = 0.05
    decimal: str = "."
    thousands: str | None = None

    @classmethod
    def from_config(cls, cfg: dict) -> "CleaningOptions":
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


def _is_missing(values: pd.Series, tokens=MISSING_VALUES) -> pd.Series:
    """Cells equal to one of ``tokens`` after trimming, case-insensitively."""
    return values.str.strip().str.lower().isin({t.strip().lower() for t in tokens})


def parse_numeric(values: pd.Series, missing_values=MISSING_VALUES, decimal: str = ".", thousands: str | None = None):
    """Parse text to floats.

    Parameters
    ----------
    values : pandas.Series
        Cells as text.
    missing_values : sequence of str
        Cells that mean "missing" (trimmed, case-insensitive).
    decimal, thousands : str
        The decimal mark and the thousands separator used in the file.

    Returns
    -------
    tuple of pandas.Series
        (numbers, missing mask, non-numeric mask); numbers are NaN where not a finite number.
    """
    text = values.astype(str).str.strip()
    missing = _is_missing(text, missing_values)
    number_text = text.where(~missing)
    if thousands:
        number_text = number_text.str.replace(thousands, "", regex=False)
    if decimal != ".":  # a "." left in a decimal-comma file is not a number: make it unparseable first
        number_text = number_text.str.replace(".", "?", regex=False).str.replace(decimal, ".", regex=False)
    numbers = pd.to_numeric(number_text, errors="coerce").astype(float)
    bad = ~missing & ~np.isfinite(numbers)  # text that is not a number, and inf
    return numbers.where(~bad), missing, bad


def check_number_format(values: pd.Series, bad: pd.Series, name: str, source: str, row_number: pd.Series) -> None:
    """Stop when the cells that did not parse look like numbers in another format (``3,5``, ``1,234.5``)."""
    text = values[bad].astype(str).str.strip()
    comma = text[text.str.fullmatch(_DECIMAL_COMMA.pattern)]
    grouped = text[text.str.fullmatch(_THOUSANDS.pattern)]
    suspicious = comma if len(comma) >= len(grouped) else grouped
    if suspicious.empty:
        return
    rows = row_number[suspicious.index].tolist()
    if len(comma) >= len(grouped):
        advice = "they look like numbers with a decimal comma: set `decimal: ','` for this dataset"
    else:
        advice = "they look like numbers with a thousands separator: set `thousands:` to that character for this dataset"
    raise DataError(
        f"{source}: column {name!r} has {len(suspicious)} value(s) such as {preview(suspicious.unique(), 3)} that are not "
        f"plain numbers (rows {preview(rows, 5)}); {advice} in the config, or fix the export, instead of letting "
        "cleaning drop them."
    )


def _label_key(label: str, merge_case: bool, merge_integer_codes: bool) -> str:
    """Key under which site labels are the same site: integer codes by exact integer value, text by case."""
    if merge_integer_codes and _INTEGER_CODE.fullmatch(label):
        return "code:" + str(int(label))  # Python int: exact for any length, no float rounding
    return "text:" + (label.casefold() if merge_case else label)


def normalise_labels(values: pd.Series, missing_values=("",), merge_case: bool = True,
                     merge_integer_codes: bool = True) -> tuple[pd.Series, dict[str, list[str]]]:
    """Strip and collapse whitespace, and merge labels that differ only in case or integer format.

    Parameters
    ----------
    values : pandas.Series
        The group column as text.
    missing_values : sequence of str
        Labels that mean "no site" (trimmed, case-insensitive); by default only empty cells.
    merge_case : bool
        ``"Lab A"`` and ``"lab a"`` are one site.
    merge_integer_codes : bool
        Integer codes with the same exact value are one site (``"01"``, ``"1"``, ``"+1"``); text
        such as ``"1.0"``, ``"1e1"``, ``"1_0"`` or non-ASCII digits is never read as a number.

    Returns
    -------
    tuple
        The labels (NaN where missing; each site under its most frequent spelling) and the
        merges made, as {shown label: [other spellings]}.
    """
    uniques = pd.Series(pd.unique(values.astype(str)))
    cleaned = dict(zip(uniques, uniques.map(lambda s: re.sub(r"\s+", " ", s.strip()))))
    text = values.astype(str).map(cleaned)
    missing = _is_missing(text, missing_values)
    present = text[~missing]
    key_of = {label: _label_key(label, merge_case, merge_integer_codes) for label in pd.unique(present)}
    keys = present.map(key_of)
    # One row per (site key, spelling): its count and where it first appears (ties go to the first).
    spellings = pd.DataFrame({"key": keys.to_numpy(), "label": present.to_numpy(), "order": np.arange(len(present))})
    spellings = spellings.groupby(["key", "label"], sort=False).agg(n=("order", "size"), first=("order", "min")).reset_index()
    spellings = spellings.sort_values(["n", "first"], ascending=[False, True], kind="stable")
    shown = dict(spellings.drop_duplicates("key")[["key", "label"]].itertuples(index=False))
    merges: dict[str, list[str]] = {}
    for key, label in spellings.loc[spellings.duplicated("key", keep=False), ["key", "label"]].itertuples(index=False):
        if label != shown[key]:
            merges.setdefault(shown[key], []).append(label)
    merges = {best: sorted(others) for best, others in merges.items()}
    labels = pd.Series(np.nan, index=values.index, dtype=object)
    labels[~missing] = keys.map(shown)
    return labels, merges


@dataclass
class CleaningResult:
    data: pd.DataFrame
    summary: dict
    sites: pd.DataFrame
    dropped_rows: pd.DataFrame


def check_dropped_share(reason: pd.Series, column: pd.Series, frame: pd.DataFrame, row_number: pd.Series,
                        max_share: float, source: str) -> None:
    """Stop, with the reasons and the first rows, when cleaning would drop more than ``max_share`` of the rows."""
    dropped = reason.notna()
    share = float(dropped.mean())
    if share <= max_share:
        return
    counts = reason[dropped].value_counts()
    first = [f"row {row_number[i]} ({reason[i]}: {frame.at[i, column[i]]!r})" for i in reason.index[dropped][:5]]
    raise DataError(
        f"{source}: cleaning would drop {int(dropped.sum())} of {len(reason)} rows ({share:.0%}), more than "
        f"max_dropped_share ({max_share:.0%}): {', '.join(f'{n} {why}' for why, n in counts.items())}. First: {'; '.join(first)}. "
        "Fix the file (or the `columns`, `missing_values`, `decimal` settings), or, if dropping them is right, raise "
        "`cleaning.max_dropped_share` for this dataset."
    )


def mapped_column_clashes(columns: dict, covariates=()) -> str:
    """A sentence naming the roles mapped to one and the same column, or "" when every column is distinct."""
    roles: dict[str, list[str]] = {}
    for role, name in [*columns.items(), *(("covariate", c) for c in covariates)]:
        roles.setdefault(str(name), []).append(role)
    clashes = [f"{' and '.join(r)} are both mapped to column {n!r}" for n, r in roles.items() if len(r) > 1]
    return "; ".join(clashes)


def check_columns(frame: pd.DataFrame, columns: dict, source: str, covariates=()) -> None:
    missing_roles = [role for role in ROLES if not columns.get(role)]
    if missing_roles:
        raise DataError(f"{source}: the column mapping has no {missing_roles}; set columns.outcome, columns.predictor and columns.group.")
    wanted = [(role, columns[role]) for role in ROLES] + [("covariate", c) for c in covariates]
    same = mapped_column_clashes(dict(wanted[:3]), covariates)
    if same:
        raise DataError(f"{source}: {same}. Map each role to its own column in the dataset's `columns`.")
    existing = frame.attrs.get("file_columns", [c for c in frame.columns if c])
    for role, name in wanted:
        if name not in existing:
            close = [c for c in existing if c.lower() == str(name).lower()]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{source}: the {role} column {name!r} is not in the file.{hint} "
                f"Columns that exist: {preview(existing, 30)}. Fix the dataset's `columns` mapping in the config."
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

    labels, merges = normalise_labels(frame[group], options.group_missing_values, options.merge_case,
                                      options.merge_integer_codes)
    reason = pd.Series(None, index=frame.index, dtype=object)
    bad_column = pd.Series(None, index=frame.index, dtype=object)

    def mark(mask: pd.Series, why: str, column: str) -> None:
        new = mask & reason.isna()
        reason[new] = why
        bad_column[new] = column

    mark(labels.isna(), "missing group", group)
    parsed: dict[str, pd.Series] = {}
    for role, name in [("outcome", outcome), ("predictor", predictor)] + [("covariate", c) for c in options.covariates]:
        numbers, missing, non_numeric = parse_numeric(frame[name], options.missing_values, options.decimal, options.thousands)
        if options.decimal == "." and not options.thousands:
            check_number_format(frame[name], non_numeric, name, source, row_number)
        if numbers.notna().sum() == 0:
            examples = sorted(set(frame[name].astype(str).str.strip()) - {""})
            raise DataError(
                f"{source}: the {role} column {name!r} has no numeric values (examples: {preview(examples)}). "
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
        by_size = counts_usable.sort_values(ascending=False)
        listing = sites.assign(n_usable=sites["site"].map(lambda site: int(counts_usable.get(site, 0))))
        raise DataError(
            f"{source}: only {len(kept_sites)} site(s) left after cleaning (need at least 2 for a multilevel model) "
            f"of {len(counts_raw)} in the group column {group!r}; usable rows per site, largest first: "
            f"{preview([f'{site} ({n})' for site, n in by_size.items()])}. Check the group column, "
            f"or lower min_obs_per_site (now {options.min_obs_per_site}).",
            details=listing[["site", "n_raw", "n_usable", "reason"]].to_string(index=False),
        )
    check_dropped_share(reason, bad_column, frame, row_number, options.max_dropped_share, source)
    x = parsed[predictor][keep_rows]
    if x.nunique() < 2:
        raise DataError(
            f"{source}: the predictor column {predictor!r} is constant ({float(x.iloc[0]):g}) in the rows kept, "
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
        "label_rules": {"merge_case": options.merge_case, "merge_integer_codes": options.merge_integer_codes,
                        "group_missing_values": list(options.group_missing_values)},
        "notes": _label_notes(kept_sites, options, group),
        "min_obs_per_site": options.min_obs_per_site,
        "max_dropped_share": options.max_dropped_share,
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


def _label_notes(sites: list[str], options: CleaningOptions, group: str) -> list[str]:
    """Sites whose label reads like a missing value: kept (a lab may be called "NA"), and said so."""
    tokens = {t.strip().lower() for t in options.missing_values} - {t.strip().lower() for t in options.group_missing_values}
    return [
        f"site {site!r} in column {group!r} is kept as a site although it reads like a missing value; "
        "if it means 'no site', add it to cleaning.group_missing_values"
        for site in sites if site.strip().lower() in tokens
    ]


def _sort_key(label: str):
    """Natural sort: integer codes by exact value, then other numbers, then text labels."""
    if _INTEGER_CODE.fullmatch(label):
        return (0, int(label), "")
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label.casefold())


def load_clean(path: str | Path, group: str) -> pd.DataFrame:
    """Read tidy data written by the clean step, keeping site labels as text (``"01"`` stays ``"01"``)."""
    frame = pd.read_csv(path, dtype={group: str}, keep_default_na=False, na_values=[])
    frame[group] = pd.Categorical(frame[group], categories=sorted(frame[group].unique(), key=_sort_key))
    return frame
