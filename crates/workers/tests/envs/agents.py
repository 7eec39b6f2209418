"""Python policies for the tests: one that balances CartPole and writes down
everything it is shown, and one that gives up after a few actions.

Both are made by the worker as ``Factory(observation_space, action_space, **kwargs)``.
"""

import json


class Learner:
    """Pushes the cart toward the way the pole falls; appends every
    ``reset`` and ``observe`` to the JSON-lines file ``log``."""

    def __init__(self, observation_space, action_space, log):
        self.action_space = action_space
        self.log = open(log, "a", buffering=1)
        self.log.write(json.dumps({"made": True}) + "\n")

    def reset(self, seed):
        self.log.write(json.dumps({"reset": seed}) + "\n")

    def act(self, observation):
        return 1 if observation[2] + 0.5 * observation[3] > 0 else 0

    def observe(self, observation, action, reward, feedback, done):
        record = {
            "observation": [round(float(v), 6) for v in observation],
            "action": action,
            "reward": reward,
            "feedback": feedback,
            "done": done,
        }
        self.log.write(json.dumps(record) + "\n")

    def close(self):
        self.log.close()


class Quitter:
    """Acts a few times, then raises."""

    def __init__(self, observation_space, action_space, acts=3):
        self.left = acts

    def act(self, observation):
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("this agent gives up")
        return 0


class Sleeper:
    """Answers the first act, then hangs."""

    def __init__(self, observation_space, action_space):
        self.acted = False

    def act(self, observation):
        if self.acted:
            import time

            time.sleep(30)
        self.acted = True
        return 1


class Outsider:
    """Chooses an action the space does not have."""

    def __init__(self, observation_space, action_space):
        self.n = action_space.n

    def act(self, observation):
        return self.n
