"""Infos and keyboard mappings reduced to what the protocol's JSON holds.

Environments put anything into ``info`` (numpy scalars, big arrays, objects),
and ``get_keys_to_action`` names keys in three ways (``ord`` codes, pygame
constants, characters). The server needs plain JSON and the browser's
``KeyboardEvent.key`` names, so both are converted here, bounded in size so
one odd value cannot blow up every step message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tandem.worker.spaces import json_number

MAX_LIST = 64
MAX_REPR = 200
# Deeper structures are cut off, so a self-referencing info cannot recurse forever.
MAX_DEPTH = 8

# pygame's key constants for keys that are not characters, and ASCII control
# codes, to the names the browser gives them.
_NAMED_KEYS = {
    1073741906: "ArrowUp",
    1073741905: "ArrowDown",
    1073741904: "ArrowLeft",
    1073741903: "ArrowRight",
    8: "Backspace",
    9: "Tab",
    13: "Enter",
    27: "Escape",
    32: "Space",
}


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not fail the step
        text = f"<{type(value).__name__}: repr raised {type(e).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 1] + "…"


def reduce_value(value: Any, depth: int = 0) -> Any:
    """One info value as JSON: see "Infos" in docs/WORKER.md."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, np.generic):
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return json_number(float(value))
        return _short_repr(value)
    if depth >= MAX_DEPTH:
        return _short_repr(value)
    if isinstance(value, np.ndarray):
        if value.size > MAX_LIST or value.dtype.kind not in "biuf":
            return f"<array {value.dtype} {tuple(value.shape)}>"
        return _reduce_list(value.tolist(), depth)
    if isinstance(value, dict):
        return {_key(k): reduce_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST:
            return _short_repr(value)
        return [reduce_value(v, depth + 1) for v in value]
    return _short_repr(value)


def _reduce_list(value: Any, depth: int) -> Any:
    if isinstance(value, list):
        return [_reduce_list(v, depth) for v in value]
    return json_number(value) if isinstance(value, float) else value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, np.generic):
        key = key.item()
    return str(key)


def reduce_info(info: Any) -> dict[str, Any]:
    """An agent's info dict as a JSON object (empty ones, the common case, cost nothing)."""
    if not info:
        return {}
    if not isinstance(info, dict):
        return {"info": reduce_value(info)}
    return {_key(k): reduce_value(v, 1) for k, v in info.items()}


def key_name(key: Any) -> str | None:
    """A key as the browser's ``KeyboardEvent.key`` names it, or None."""
    if isinstance(key, np.integer):
        key = int(key)
    if isinstance(key, str):
        if len(key) != 1:
            return None
        key = ord(key)
    if not isinstance(key, int) or isinstance(key, bool):
        return None
    if key in _NAMED_KEYS:
        return _NAMED_KEYS[key]
    if 0 <= key <= 0x10FFFF and chr(key).isprintable():
        return chr(key)
    return None


def _keys(combination: Any) -> list[Any]:
    # Gymnasium's play accepts a tuple of codes or characters, a single code,
    # or a string whose characters are the keys.
    if isinstance(combination, (tuple, list, frozenset, set)):
        return list(combination)
    if isinstance(combination, str):
        return list(combination)
    return [combination]


def keys_to_action(mapping: Any, action_json: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """``get_keys_to_action()``'s dict as ``[{"keys": [...], "action": ...}]``.

    Combinations with a key that has no browser name are left out, and so is
    the empty combination (no key pressed): the server has its own default
    action for that.
    """
    out = []
    for combination, action in mapping.items():
        names = []
        for key in _keys(combination):
            name = key_name(key)
            if name is None:
                names = None
                break
            if name not in names:
                names.append(name)
        if not names:
            continue
        out.append({"keys": names, "action": action_json(action)})
    return out


def finite(value: Any) -> float | str:
    """A reward as a JSON number (see ``json_number`` for the non-finite ones)."""
    value = float(value)
    return value if math.isfinite(value) else json_number(value)
