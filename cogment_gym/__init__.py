"""cogment_gym: Gymnasium and PettingZoo environments as Cogment 2.x services, and Cogment trials
as Gymnasium environments."""

from cogment_gym.errors import CogmentGymError

__version__ = "0.1.0"

__all__ = ["CogmentGymError", "__version__"]
