"""Spaces, observations and actions in the protocol's form.

The server knows three spaces (``Discrete``, ``MultiDiscrete``, ``Box``) in the
JSON form Minari writes, so datasets it exports load with Minari's own
``deserialize_space``. Observation spaces of other kinds are flattened with
Gymnasium's ``flatten_space``; action spaces must already be one of the three,
because an action the server sends has to mean the same thing to both sides.

Everything that can be worked out once per space is worked out at ``make``:
each agent gets an ``encode`` (observation to array) and a ``decode`` (JSON
action to what ``step`` takes), so a step does no space dispatch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from tandem.worker.protocol import Message, ProtocolError, Unsupported, dtype_name


def json_number(value: float) -> float | str:
    """A float JSON can hold: infinities and NaN become strings, as Minari reads them."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _json_bounds(bounds: np.ndarray) -> Any:
    if bounds.dtype.kind == "f" and not np.isfinite(bounds).all():
        return _nested_numbers(bounds.tolist())
    return bounds.tolist()


def _nested_numbers(value: Any) -> Any:
    if isinstance(value, list):
        return [_nested_numbers(v) for v in value]
    return json_number(value) if isinstance(value, float) else value


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """Minari's JSON form of a Discrete, MultiDiscrete or Box space."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "dtype": str(space.dtype), "start": int(space.start), "n": int(space.n)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "dtype": str(space.dtype),
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
        }
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "dtype": str(space.dtype),
            "shape": list(space.shape),
            "low": _json_bounds(space.low),
            "high": _json_bounds(space.high),
        }
    raise Unsupported(f"the space {space} has no JSON form")


# The Box dtypes the server holds observations in; others are widened to one.
_SERVER_DTYPES = ("float32", "float64", "uint8", "int64")


def _widened(space: spaces.Space) -> spaces.Space:
    """A Box of a dtype the server takes: booleans as uint8, other integers as
    int64, float16 as float32, so that an int32 Box or a flattened MultiBinary
    (int8) can be played and recorded without loss."""
    if not isinstance(space, spaces.Box) or str(space.dtype) in _SERVER_DTYPES:
        return space
    kind = space.dtype.kind
    target = {"b": np.uint8, "i": np.int64, "u": np.int64, "f": np.float32}.get(kind)
    if target is None:
        return space
    return spaces.Box(space.low.astype(target), space.high.astype(target), space.shape, target)


class ObservationCodec:
    """Turns one agent's observations into arrays of the space's dtype and shape."""

    def __init__(self, space: spaces.Space):
        self.space = space
        if isinstance(space, spaces.Discrete):
            self.wire_space: spaces.Space = space
            self.dtype = np.dtype(np.int64)
            self.shape: tuple[int, ...] = ()
            self._flatten = None
        elif isinstance(space, (spaces.Box, spaces.MultiDiscrete)):
            self.wire_space = space
            self.dtype = space.dtype
            self.shape = tuple(space.shape)
            self._flatten = None
        else:
            try:
                flat = spaces.flatten_space(space)
            except (NotImplementedError, TypeError, ValueError) as e:
                raise Unsupported(f"the observation space {space} cannot be flattened: {e}") from None
            if not isinstance(flat, spaces.Box):
                raise Unsupported(f"the observation space {space} does not flatten to a Box")
            self.wire_space = flat
            self.dtype = flat.dtype
            self.shape = tuple(flat.shape)
            self._flatten = space
        self.wire_space = _widened(self.wire_space)
        self.dtype = self.wire_space.dtype
        if dtype_name(self.dtype) is None:
            raise Unsupported(f"observations of dtype {self.dtype} cannot be sent")
        self.json = space_to_json(self.wire_space)
        self.zeros = np.zeros(self.shape, self.dtype)

    def encode(self, observation: Any) -> np.ndarray:
        if self._flatten is not None:
            observation = spaces.flatten(self._flatten, observation)
        array = np.asarray(observation, dtype=self.dtype)
        if array.shape != self.shape:
            raise ValueError(
                f"an observation of shape {array.shape} does not fit the space's shape {self.shape}"
            )
        return array


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def action_decoder(space: spaces.Space) -> Callable[[Any, Message], Any]:
    """A function from a JSON action (and its message, for arrays) to ``step``'s argument.

    Malformed actions are protocol errors: the server validates actions
    against the space it was given, so a mismatch is a bug on one side, not
    the environment's business. Values outside the space are passed on and
    left to the environment, as Gymnasium itself does.
    """
    if isinstance(space, spaces.Discrete):

        def decode_discrete(action: Any, message: Message) -> Any:
            if not _is_int(action):
                raise ProtocolError(f"a Discrete action must be an integer, not {action!r}")
            return action

        return decode_discrete

    if isinstance(space, (spaces.MultiDiscrete, spaces.Box)):
        shape = tuple(space.shape)
        size = math.prod(shape)
        dtype = space.dtype
        valid = _is_int if isinstance(space, spaces.MultiDiscrete) else _is_number
        what = "integers" if isinstance(space, spaces.MultiDiscrete) else "numbers"
        name = type(space).__name__

        def decode_array(action: Any, message: Message) -> Any:
            array = message.array(action)
            if array is None:
                if not isinstance(action, list) or len(action) != size or not all(map(valid, action)):
                    raise ProtocolError(f"a {name} action must be a list of {size} {what}")
                array = np.asarray(action, dtype=dtype)
            elif array.size != size:
                raise ProtocolError(f"a {name} action must hold {size} values")
            else:
                array = array.astype(dtype, copy=False)
            return array.reshape(shape)

        return decode_array

    raise Unsupported(f"the action space {space} is not Discrete, MultiDiscrete or Box")


def action_to_json(space: spaces.Space, action: Any) -> Any:
    """An action as ``step`` requests carry it (for ``keys_to_action``)."""
    if isinstance(space, spaces.Discrete):
        return int(action)
    array = np.asarray(action).reshape(-1)
    if isinstance(space, spaces.MultiDiscrete):
        return [int(a) for a in array]
    return [json_number(float(a)) for a in array]
