"""Checking structured output against the subset of JSON Schema the app uses.

A llama.cpp grammar keeps the output on the schema's path, but `max_tokens` can still cut it short,
so every structured answer is parsed and validated before anyone trusts it.
"""
from __future__ import annotations

import json

from .errors import GenerationError

_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
          "boolean": bool, "null": type(None)}


def errors(value, schema: dict, where: str = "$") -> list[str]:
    """Every way `value` departs from `schema` (empty when valid)."""
    out = []
    t = schema.get("type")
    if t:
        types = t if isinstance(t, list) else [t]
        ok = any(isinstance(value, _TYPES[x]) and not (x in ("integer", "number") and isinstance(value, bool))
                 for x in types)
        if not ok:
            return [f"{where}: expected {t}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}: missing '{key}'")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                out += errors(value[key], sub, f"{where}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: above {schema['maximum']}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        out.append(f"{where}: shorter than {schema['minLength']}")
    return out


def parse(text: str, schema: dict):
    """The parsed value, or GenerationError saying why the output is unusable."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenerationError(
            f"The model's structured output is not complete JSON ({e.msg} at {e.pos}); "
            "raise max_tokens or use a larger model.") from e
    problems = errors(value, schema)
    if problems:
        raise GenerationError(f"The model's structured output does not fit the schema ({problems[0]}).")
    return value
