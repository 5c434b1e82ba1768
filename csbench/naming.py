"""`name[key=value,...]` names (benchopt style) for priors and datasets."""
from __future__ import annotations

import re
from typing import Any

from csbench.errors import CsbenchError

NAME_PATTERN = re.compile(r"^([a-z0-9][a-z0-9-]*)(?:\[(.*)\])?$")


def parse_value(text: str) -> Any:
    """'3' -> 3, '0.1' -> 0.1, 'true' -> True, 'none' -> None, anything else stays a string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_name(spec: str, what: str = "name") -> tuple[str, dict[str, Any]]:
    """'lasso-dct[lam=0.1,steps=500]' -> ('lasso-dct', {'lam': 0.1, 'steps': 500})."""
    match = NAME_PATTERN.match(spec.strip())
    if not match:
        raise CsbenchError(f"bad {what} name {spec!r}: use name or name[key=value,...]")
    name, body = match.group(1), match.group(2)
    params: dict[str, Any] = {}
    if body:
        for item in body.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CsbenchError(f"bad parameter {item!r} in {spec!r}: use key=value")
            params[key.strip()] = parse_value(value.strip())
    return name, params


def format_name(name: str, params: dict[str, Any]) -> str:
    """Inverse of parse_name: ('lasso-dct', {'lam': 0.1}) -> 'lasso-dct[lam=0.1]'."""
    if not params:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in params.items())}]"
