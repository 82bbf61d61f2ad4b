"""cogment_gym: Gymnasium and PettingZoo environments as Cogment 2.x services, and Cogment trials
as Gymnasium environments.

    import cogment_gym
    server = cogment_gym.serve("CartPole-v1")          # a Cogment environment service
    env = cogment_gym.CogmentEnv("CartPole-v1")         # a Cogment trial as a gymnasium.Env
"""

from cogment_gym._version import __version__
from cogment_gym.adapters import EnvServer, serve, serve_forever
from cogment_gym.envs import CogmentEnv
from cogment_gym.errors import CogmentGymError
from cogment_gym.orchestrator import Orchestrator

__all__ = ["CogmentEnv", "CogmentGymError", "EnvServer", "Orchestrator", "__version__", "serve", "serve_forever"]
