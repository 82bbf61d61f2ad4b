"""cogment_gym: Gymnasium and PettingZoo environments as Cogment 2.x services, and Cogment trials
as Gymnasium environments."""

from cogment_gym.errors import CogmentGymError

from cogment_gym._version import __version__

__all__ = ["CogmentGymError", "__version__"]
