"""Python policies: an AI agent a researcher wrote, playing one seat.

The experiment file names a factory, ``entry = "my_pkg.agents:Agent"``. The
worker imports the module, calls the factory with the seat's spaces, rebuilt
as Gymnasium spaces from the JSON the server sends, and the policy's
``kwargs``::

    policy = Agent(observation_space, action_space, **kwargs)

The object it returns must have ``act(observation) -> action``. Two methods
are used when present: ``reset(seed)`` at the start of every episode, and
``observe(observation, action, reward, feedback, done)`` after every step,
for agents that learn online (as SHARPIE's do). ``observation`` there is the
one the action was taken from; ``action`` is the action the environment got,
which is a participant's when they played or corrected the seat; ``feedback``
is the participant's feedback on that step (a number) or ``None``.

Observations reach the policy as the space holds them: a numpy array of the
space's dtype and shape for ``Box`` and ``MultiDiscrete``, an ``int`` for
``Discrete``. Actions go back in the same forms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from tandem.worker.hosting import resolve
from tandem.worker.protocol import Message, ProtocolError, Unsupported
from tandem.worker.spaces import action_decoder, action_to_json


def _number(value: Any) -> float:
    """A JSON number, or one of the strings the protocol writes for non-finite ones."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ProtocolError(f"expected a number, not {value!r}")


def _bounds(value: Any) -> Any:
    if isinstance(value, list):
        return [_bounds(v) for v in value]
    return _number(value)


def _int_list(header: dict[str, Any], key: str) -> list[int]:
    value = header.get(key)
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ProtocolError(f'a space\'s "{key}" must be a list of integers')
    return value


def space_from_json(value: Any) -> spaces.Space:
    """The Gymnasium space of the JSON form ``space_to_json`` writes (Minari's)."""
    if not isinstance(value, dict):
        raise ProtocolError("a space must be a JSON object")
    kind = value.get("type")
    try:
        if kind == "Discrete":
            n, start = value.get("n"), value.get("start", 0)
            if not isinstance(n, int) or not isinstance(start, int) or n < 1:
                raise ProtocolError("a Discrete space needs integers n >= 1 and start")
            return spaces.Discrete(n, start=start)
        if kind == "MultiDiscrete":
            nvec = _int_list(value, "nvec")
            start = value.get("start")
            return spaces.MultiDiscrete(nvec, start=_int_list(value, "start") if start is not None else None)
        if kind == "Box":
            dtype = np.dtype(str(value.get("dtype", "float32")))
            shape = tuple(_int_list(value, "shape"))
            low = np.asarray(_bounds(value.get("low")), dtype=np.float64)
            high = np.asarray(_bounds(value.get("high")), dtype=np.float64)
            if dtype.kind != "f" and not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ProtocolError(f"a {dtype} Box with infinite bounds")
            low, high = low.astype(dtype), high.astype(dtype)
            return spaces.Box(low.reshape(shape), high.reshape(shape), shape, dtype)
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"a {kind} space that Gymnasium refuses: {e}") from None
    raise ProtocolError(f"unknown space type {kind!r}")


def _observation_reader(space: spaces.Space) -> Any:
    """A function from the array the server sends to what ``act`` takes."""
    if isinstance(space, spaces.Discrete):
        return lambda array: int(array.reshape(-1)[0]) if array.size == 1 else _wrong_size(array, 1)
    shape = tuple(space.shape)
    size = math.prod(shape)
    dtype = space.dtype

    def read(array: np.ndarray) -> np.ndarray:
        if array.size != size:
            _wrong_size(array, size)
        return array.astype(dtype, copy=False).reshape(shape)

    return read


def _wrong_size(array: np.ndarray, size: int) -> Any:
    raise ProtocolError(f"an observation of {array.size} values for a space of {size}")


class PolicyHost:
    """One policy instance and what it needs to talk to the server."""

    def __init__(self, policy: Any, observation_space: spaces.Space, action_space: spaces.Space, entry: str):
        act = getattr(policy, "act", None)
        if not callable(act):
            raise Unsupported(f"{entry} made a {type(policy).__name__}, which has no act(observation) method")
        self.policy = policy
        self.entry = entry
        self.action_space = action_space
        self._act = act
        self._reset = getattr(policy, "reset", None) if callable(getattr(policy, "reset", None)) else None
        self._observe = getattr(policy, "observe", None) if callable(getattr(policy, "observe", None)) else None
        self._read = _observation_reader(observation_space)
        self._decode_action = action_decoder(action_space)

    @property
    def observes(self) -> bool:
        return self._observe is not None

    def _observation(self, message: Message) -> Any:
        array = message.array(message.header.get("observation"))
        if array is None:
            raise ProtocolError('"observation" must refer to an array')
        return self._read(array)

    def reset(self, seed: int) -> None:
        if self._reset is not None:
            self._reset(seed)

    def act(self, message: Message) -> Any:
        action = self._act(self._observation(message))
        try:
            return action_to_json(self.action_space, action)
        except (TypeError, ValueError) as e:
            raise TypeError(f"act returned {_short(action)}, which is not an action of {self.action_space}: {e}") from None

    def observe(self, message: Message) -> None:
        if self._observe is None:
            return
        header = message.header
        feedback = header.get("feedback")
        done = header.get("done")
        if not isinstance(done, bool):
            raise ProtocolError('"done" must be a boolean')
        self._observe(
            self._observation(message),
            self._decode_action(header.get("action"), message),
            _number(header.get("reward")),
            None if feedback is None else _number(feedback),
            done,
        )

    def close(self) -> None:
        close = getattr(self.policy, "close", None)
        if callable(close):
            close()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def construct_policy(header: dict[str, Any]) -> PolicyHost:
    """The policy a ``policy`` request names, made for the seat it describes."""
    entry, kwargs = header.get("entry"), header.get("kwargs", {})
    if not isinstance(entry, str) or ":" not in entry or not all(entry.partition(":")[::2]):
        raise ProtocolError(f'a policy entry is "module:Factory", not {entry!r}')
    if not isinstance(kwargs, dict):
        raise ProtocolError('"kwargs" must be an object')
    observation_space = space_from_json(header.get("observation_space"))
    action_space = space_from_json(header.get("action_space"))
    if not isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)):
        raise Unsupported(f"the action space {action_space} is not Discrete, MultiDiscrete or Box")
    policy = resolve(entry)(observation_space, action_space, **kwargs)
    return PolicyHost(policy, observation_space, action_space, entry)
