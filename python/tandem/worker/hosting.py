"""Making environments from the three sources and driving them per request.

Gymnasium and PettingZoo disagree on almost everything (one agent or many,
tuples or dicts, agents that leave); the server wants one shape: lists in the
order of ``agents``. ``GymHost`` and ``ParallelHost`` present both as that
shape, and ``make`` does the work that is done once (spaces, codecs, the first
render, ``keys_to_action``) so that ``reset`` and ``step`` stay short.

Only what the experiment file names is imported, by name: a Gymnasium id, a
PettingZoo module, or a ``module:function`` factory.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np

from tandem.worker.versions import version_of
from tandem.worker.protocol import ProtocolError, Unsupported
from tandem.worker.spaces import ObservationCodec, action_decoder, action_to_json, space_to_json
from tandem.worker.values import finite, keys_to_action, reduce_info

SOURCES = ("gymnasium", "pettingzoo", "python")
RENDER_MODE = "rgb_array"

_ale_registered = False


def _register_ale() -> None:
    global _ale_registered
    if _ale_registered:
        return
    _ale_registered = True
    if importlib.util.find_spec("ale_py") is None:
        return
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)


def frame_array(frame: Any) -> np.ndarray | None:
    """A render as a uint8 [H, W, 3] array (alpha dropped), None for no render."""
    if frame is None:
        return None
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise Unsupported(f"render() returned an array of shape {array.shape}, not [height, width, 3]")
    if array.dtype != np.uint8:
        raise Unsupported(f"render() returned an array of dtype {array.dtype}, not uint8")
    if array.shape[2] == 4:
        array = array[:, :, :3]
    return array


class Agent:
    """One agent's name, spaces and the codecs worked out from them."""

    __slots__ = ("name", "observation", "action_space", "decode")

    def __init__(self, name: str, observation_space: Any, action_space: Any):
        self.name = name
        self.observation = ObservationCodec(observation_space)
        self.action_space = action_space
        self.decode = action_decoder(action_space)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "observation_space": self.observation.json,
            "action_space": space_to_json(self.action_space),
        }


class Host:
    """An environment made for the server: the methods answer its requests."""

    agents: list[Agent]
    env: Any
    renders: bool
    # Set when the frame is the first agent's observation (see
    # ``_screen_is_observation``): steps then skip rendering.
    frame_is_observation: bool = False

    def reset(self, seed: int) -> tuple[list[np.ndarray], list[dict]]:
        raise NotImplementedError

    def step(self, actions: list[Any], message: Any) -> tuple:
        raise NotImplementedError

    def render(self) -> np.ndarray | None:
        if not self.renders:
            return None
        return frame_array(self.env.render())

    def close(self) -> None:
        self.env.close()

    def _check_actions(self, actions: Any) -> None:
        if not isinstance(actions, list) or len(actions) != len(self.agents):
            raise ProtocolError(f'"actions" must be a list of {len(self.agents)} actions, one per agent')


class GymHost(Host):
    def __init__(self, env: Any):
        self.env = env
        self.agents = [Agent("agent", env.observation_space, env.action_space)]
        self._encode = self.agents[0].observation.encode
        self._decode = self.agents[0].decode
        self.renders = getattr(env, "render_mode", None) == RENDER_MODE
        self.frame_is_observation = self.renders and _screen_is_observation(env)

    def reset(self, seed: int) -> tuple[list[np.ndarray], list[dict]]:
        observation, info = self.env.reset(seed=seed)
        return [self._encode(observation)], [reduce_info(info)]

    def step(self, actions: list[Any], message: Any) -> tuple:
        self._check_actions(actions)
        observation, reward, terminated, truncated, info = self.env.step(self._decode(actions[0], message))
        return (
            [self._encode(observation)],
            [finite(reward)],
            [bool(terminated)],
            [bool(truncated)],
            [reduce_info(info)],
        )

    def keys_to_action(self) -> Any:
        for candidate in (self.env, self.env.unwrapped):
            method = getattr(candidate, "get_keys_to_action", None)
            if callable(method):
                return method()
        return None


def _screen_is_observation(env: Any) -> bool:
    """Whether every render of ``env`` is, by construction, its observation.

    True for ale-py's Atari environments with RGB observations, seen through
    wrappers that leave the observation space alone (``gymnasium.make``'s
    own): both the observation and ``render()`` are the emulator's screen.
    The worker then sends the observation as the frame without rendering it
    again and comparing the two, which at 60 steps a second is a fifth of a
    worker's CPU. It still compares them at every reset, to be sure.
    """
    unwrapped = getattr(env, "unwrapped", env)
    return (
        type(unwrapped).__module__.split(".")[0] == "ale_py"
        and getattr(unwrapped, "_obs_type", None) == "rgb"
        and env.observation_space == unwrapped.observation_space
    )


class ParallelHost(Host):
    """A PettingZoo parallel environment; agents it has removed stay in the lists."""

    def __init__(self, env: Any):
        self.env = env
        names = list(env.possible_agents)
        self.agents = [Agent(str(a), env.observation_space(a), env.action_space(a)) for a in names]
        self._names = names
        mode = getattr(env, "render_mode", RENDER_MODE)
        self.renders = mode == RENDER_MODE

    def _observations(self, observations: dict) -> list[np.ndarray]:
        return [
            agent.observation.encode(observations[name]) if name in observations else agent.observation.zeros
            for name, agent in zip(self._names, self.agents)
        ]

    def reset(self, seed: int) -> tuple[list[np.ndarray], list[dict]]:
        result = self.env.reset(seed=seed)
        observations, infos = result if isinstance(result, tuple) else (result, {})
        return self._observations(observations), [reduce_info(infos.get(a)) for a in self._names]

    def step(self, actions: list[Any], message: Any) -> tuple:
        self._check_actions(actions)
        live = set(self.env.agents)
        chosen = {
            name: agent.decode(action, message)
            for name, agent, action in zip(self._names, self.agents, actions)
            if name in live
        }
        observations, rewards, terminations, truncations, infos = self.env.step(chosen)
        return (
            self._observations(observations),
            [finite(rewards.get(a, 0.0)) for a in self._names],
            [bool(terminations.get(a, True)) for a in self._names],
            [bool(truncations.get(a, False)) for a in self._names],
            [reduce_info(infos.get(a)) for a in self._names],
        )

    def keys_to_action(self) -> Any:
        method = getattr(self.env, "get_keys_to_action", None)
        return method() if callable(method) else None


def _is_parallel(env: Any) -> bool:
    return hasattr(env, "possible_agents") and callable(getattr(env, "observation_space", None))


def _is_aec(env: Any) -> bool:
    return _is_parallel(env) and hasattr(env, "agent_iter") and hasattr(env, "last")


def _host(env: Any, what: str) -> Host:
    """The environment in its host; closed again if it cannot be hosted."""
    import gymnasium

    try:
        if isinstance(env, gymnasium.Env):
            return GymHost(env)
        if _is_aec(env):
            from pettingzoo.utils.conversions import aec_to_parallel

            return ParallelHost(aec_to_parallel(env))
        if _is_parallel(env):
            return ParallelHost(env)
    except BaseException:
        _close_quietly(env)
        raise
    raise Unsupported(f"{what} returned {type(env).__name__}, not a Gymnasium or PettingZoo environment")


def _close_quietly(env: Any) -> None:
    close = getattr(env, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            pass


def resolve(target: str) -> Any:
    """The callable ``module:attribute`` names, imported by name (nothing is evaluated)."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value: Any = module
    for part in attribute.split("."):
        value = getattr(value, part, None)
        if value is None:
            raise Unsupported(f"{module_name} has no {attribute}")
    if not callable(value):
        raise Unsupported(f"{target} is not callable")
    return value


def construct(source: str, target: str, kwargs: dict[str, Any]) -> tuple[Host, str]:
    """The environment ``make`` names, hosted, and a one-line description."""
    if source == "gymnasium":
        import gymnasium

        _register_ale()
        env = gymnasium.make(target, render_mode=RENDER_MODE, **kwargs)
        return _host(env, target), f"gymnasium {gymnasium.__version__} {target}"
    if source == "pettingzoo":
        module = importlib.import_module(target)
        parallel = getattr(module, "parallel_env", None)
        if callable(parallel):
            env = parallel(render_mode=RENDER_MODE, **kwargs)
        else:
            aec = getattr(module, "env", None)
            if not callable(aec):
                raise Unsupported(f"{target} has neither parallel_env nor env")
            from pettingzoo.utils.conversions import aec_to_parallel

            env = aec_to_parallel(aec(render_mode=RENDER_MODE, **kwargs))
        if not _is_parallel(env):
            raise Unsupported(f"{target} did not make a PettingZoo environment")
        return _host(env, target), f"pettingzoo {version_of('pettingzoo')} {target}"
    if source == "python":
        if ":" not in target or not all(target.partition(":")[::2]):
            raise ProtocolError(f'a python target is "module:function", not {target!r}')
        env = resolve(target)(render_mode=RENDER_MODE, **kwargs)
        host = _host(env, target)
        kind = "gymnasium" if isinstance(host, GymHost) else "pettingzoo"
        return host, f"python {target} ({kind} {version_of(kind)})"
    raise ProtocolError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")


def describe(host: Host, description: str) -> dict[str, Any]:
    """The ``made`` header: see docs/WORKER.md. Resets with seed 0 to learn the frame size."""
    env = host.env
    render = None
    if host.renders:
        host.reset(0)
        try:
            frame = host.render()
        except NotImplementedError:
            # gymnasium.Env.render's default: the environment has no render
            # at all, whatever its render_mode says.
            frame = None
        if frame is not None:
            render = {"kind": "pixels", "width": int(frame.shape[1]), "height": int(frame.shape[0])}
        else:
            host.renders = False
    metadata_ = getattr(env, "metadata", None) or {}
    fps = metadata_.get("render_fps")
    if not isinstance(fps, (int, float, np.integer, np.floating)) or isinstance(fps, bool) or not 0 < fps < float("inf"):
        fps = None
    elif float(fps).is_integer():
        # 50.0 and np.int64(50) both as 50: an integer is what readers expect.
        fps = int(fps)
    else:
        fps = float(fps)
    spec = getattr(env, "spec", None)
    max_steps = getattr(spec, "max_episode_steps", None) if isinstance(host, GymHost) else None
    mapping = host.keys_to_action()
    keys = None
    if mapping:
        space = host.agents[0].action_space
        keys = keys_to_action(dict(mapping), lambda a: action_to_json(space, a))
    return {
        "agents": [agent.to_json() for agent in host.agents],
        "render": render,
        "fps": fps,
        "max_episode_steps": int(max_steps) if max_steps else None,
        "keys_to_action": keys,
        "description": description,
    }
