"""The workflow's config schema (`workflow/schemas/config.schema.yaml`): reading it, its defaults, typing text.

The schema is the one source of every config default: the library's own defaults (cleaning
options, the simulation spec, the sampler settings a fit falls back to) are read from it by
`defaults`, so a default is written once.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def load_schema(path=SCHEMA_PATH) -> dict:
    """The workflow's JSON schema (YAML) as a dict (by default the shipped one)."""
    import yaml

    return yaml.safe_load(Path(path).read_text())


def _schema_types(schema: dict, root: dict) -> set[str]:
    """Every JSON type a (sub)schema allows, following `$ref` and `oneOf`/`anyOf`."""
    schema = resolve(schema, root)
    types = schema.get("type", [])
    found = {types} if isinstance(types, str) else set(types)
    for key in ("oneOf", "anyOf"):
        for option in schema.get(key, []):
            found |= _schema_types(option, root)
    return found


def resolve(schema: dict, root: dict) -> dict:
    """``schema`` with its ``$ref`` followed; properties written beside the ``$ref`` (e.g. defaults) merged in."""
    while isinstance(schema, dict) and "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        local = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **local}
        if "properties" in target and "properties" in local:  # e.g. defaults next to a $ref
            names = {**target["properties"], **local["properties"]}
            merged["properties"] = {
                n: {**target["properties"].get(n, {}), **local["properties"].get(n, {})}
                for n in names
            }
        schema = merged
    return schema if isinstance(schema, dict) else {}


def _coerce_scalar(value: str, types: set[str]):
    text = value.strip()
    if "integer" in types and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if "null" in types and text.lower() in {"null", "~", "none", ""}:
        return None
    return value


def coerce_by_schema(value, schema: dict, root: dict | None = None):
    """Turn text into the numbers, booleans and nulls the schema asks for, everywhere in ``value``.

    Snakemake reads nested ``--config`` values (``sampler='{draws: 500}'``) as strings; a string
    is converted only where the schema does not allow a string, so typed YAML is left as it is.

    Parameters
    ----------
    value : Any
        The config (or part of it) as Snakemake parsed it.
    schema : dict
        The JSON schema for ``value``.
    root : dict, optional
        The whole schema, for ``$ref`` look-ups (defaults to ``schema``).

    Returns
    -------
    Any
        A copy of ``value`` with convertible strings converted; anything else unchanged (the
        schema's validation then reports it).
    """
    root = schema if root is None else root
    schema = resolve(schema, root)
    types = _schema_types(schema, root)
    if isinstance(value, str):
        return value if "string" in types or not types else _coerce_scalar(value, types)
    options = [resolve(o, root) for key in ("oneOf", "anyOf") for o in schema.get(key, [])]
    if isinstance(value, dict):
        object_schema = next(
            (o for o in [schema, *options] if "properties" in o or "additionalProperties" in o),
            schema,
        )
        properties = object_schema.get("properties", {})
        extra = object_schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            out[key] = coerce_by_schema(item, sub, root) if isinstance(sub, dict) else item
        return out
    if isinstance(value, list):
        array_schema = next(
            (o for o in [schema, *options] if isinstance(o.get("items"), dict)), None
        )
        return (
            [coerce_by_schema(v, array_schema["items"], root) for v in value]
            if array_schema
            else value
        )
    return value


def schema_defaults(schema: dict) -> dict:
    """What an empty object becomes under ``schema``: every property that has a default, nested objects filled likewise.

    The ``simulation_study`` block has no default of its own (a config that sets it keeps its
    keys); the workflow fills an absent block with this.
    """
    out = {}
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub:
            value = copy.deepcopy(sub["default"])
            out[key] = (
                {**schema_defaults(sub), **value}
                if isinstance(value, dict) and "properties" in sub
                else value
            )
    return out


@functools.cache
def _shipped() -> dict:
    return load_schema(SCHEMA_PATH)


def defaults(block: str) -> dict:
    """The shipped schema's defaults of one config block.

    Parameters
    ----------
    block : str
        A top-level key (``cleaning``, ``sampler``, ``checking``, ``simulation_study``) or, for a
        block that sits inside a dataset, its definition's name (``simulate``).

    Returns
    -------
    dict
        Key -> default, for every key of the block that has one (a fresh copy).
    """
    root = _shipped()
    where = root["properties"] if block in root["properties"] else root["definitions"]
    return schema_defaults(resolve(where[block], root))


def filled(block: str, given: dict) -> dict:
    """``given`` with every key of ``block`` it leaves out at its schema default (see `defaults`)."""
    return {**defaults(block), **given}
