"""The column mapping: which file column plays which role (outcome, predictor, group, trials, se).

A dataset's ``columns`` maps roles to the names in the user's file; covariates are kept under
their own names. These functions list what cleaning reads and stop, with advice, on a mapping
that cannot work (a role missing, two roles on one column, a column not in the file).
"""

from __future__ import annotations

import pandas as pd

from hierpool.errors import DataError
from hierpool.rawfile import preview

ROLES = ("outcome", "predictor", "group")
REQUIRED_ROLES = ("outcome", "group")
EXTRA_ROLES = ("trials", "se")  # optional numeric columns kept in the tidy data


def mapped_column_clashes(columns: dict, covariates=()) -> str:
    """A sentence naming the roles mapped to one and the same column, or "" when every column is distinct."""
    roles: dict[str, list[str]] = {}
    for role, name in [*columns.items(), *(("covariate", c) for c in covariates)]:
        roles.setdefault(str(name), []).append(role)
    clashes = [
        f"{' and '.join(r)} are both mapped to column {n!r}" for n, r in roles.items() if len(r) > 1
    ]
    return "; ".join(clashes)


def mapped_roles(columns: dict) -> list[tuple[str, str]]:
    """(role, column) for every role the mapping has, in the order outcome, predictor, group, trials, se."""
    return [(role, columns[role]) for role in (*ROLES, *EXTRA_ROLES) if columns.get(role)]


def mapped_columns(columns: dict, covariates=()) -> list[str]:
    """The file columns cleaning reads: every mapped role, then the covariates."""
    return [name for _, name in mapped_roles(columns)] + list(covariates)


def check_columns(frame: pd.DataFrame, columns: dict, source: str, covariates=()) -> None:
    """Stop with advice when a required role is unmapped, two roles share a column, or a mapped column is not in the file."""
    missing_roles = [role for role in REQUIRED_ROLES if not columns.get(role)]
    if missing_roles:
        raise DataError(
            f"{source}: the column mapping has no {missing_roles}; set columns.outcome and columns.group "
            "(and columns.predictor, unless the data have none)."
        )
    roles = mapped_roles(columns)
    wanted = roles + [("covariate", c) for c in covariates]
    same = mapped_column_clashes(dict(roles), covariates)
    if same:
        raise DataError(
            f"{source}: {same}. Map each role to its own column in the dataset's `columns`."
        )
    existing = frame.attrs.get("file_columns", [c for c in frame.columns if c])
    for role, name in wanted:
        if name not in existing:
            close = [c for c in existing if c.lower() == str(name).lower()]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{source}: the {role} column {name!r} is not in the file.{hint} "
                f"Columns that exist: {preview(existing, 30)}. Fix the dataset's `columns` mapping in the config."
            )
