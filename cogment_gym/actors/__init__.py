"""Service actors: Python policies served as ``cogmentAPI.ServiceActorSP``.

    from cogment_gym.actors import serve_actor, random_policy
    server = serve_actor(random_policy)        # give server.endpoint as an actor's endpoint

A policy is ``policy(observation, context) -> action`` or a :class:`TrialPolicy` subclass (one
instance per trial); it is asked for an action only when its agent acts (its turn, live), and
the off-turn and dead-step answers Cogment's lock-step ticks need are sent for it.
"""

from cogment_gym.actors.policies import KeyboardPolicy, RandomPolicy, random_policy
from cogment_gym.actors.policy import ActorContext, Policy, TrialPolicy
from cogment_gym.actors.server import ActorServer, serve_actor, serve_actor_forever
from cogment_gym.actors.service import ServiceActorServicer

__all__ = [
    "ActorContext",
    "ActorServer",
    "KeyboardPolicy",
    "Policy",
    "RandomPolicy",
    "ServiceActorServicer",
    "TrialPolicy",
    "random_policy",
    "serve_actor",
    "serve_actor_forever",
]
