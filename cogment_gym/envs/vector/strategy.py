"""How a :class:`~cogment_gym.envs.CogmentVectorEnv` runs its sub-environments: the choice of
``envs_per_trial``.

- ``envs_per_trial=1``: one trial per sub-environment (one episode per trial):
  :class:`~cogment_gym.envs.vector.per_trial.PerTrialVectorEnv`.
- ``envs_per_trial=K > 1``: ``num_envs / K`` batched trials of K sub-environments each:
  :class:`~cogment_gym.envs.vector.batched.BatchedVectorEnv`.
- ``envs_per_trial=None`` (the default): chosen here. Batched trials, as few as keep every
  environment service busy: with S services (``len(environment)`` endpoints, one per served
  worker, ``serve(workers=S)``; S = 1 for the embedded default, whose env runs on this process's
  loop) the number of trials T is the smallest multiple of S dividing ``num_envs``, and
  ``K = num_envs / T`` (trial ``j`` on ``environment[j % S]``). E.g. 16 sub-envs: one trial of 16
  embedded or on one service, two of 8 on two services. One trial per sub-environment instead
  when no such T gives ``K > 1`` (``num_envs=5`` on 2 services, ``num_envs=2`` on 2), and where
  batched trials cannot do what was asked, or cannot be run:

  - ``observation_space=`` / ``action_space=`` given: the service serves no cogment_gym
    ``EnvSpecSP`` (e.g. an official Cogment SDK env), it cannot batch;
  - ``render_mode=`` (batched trials do not render) or ``max_steps=`` (it would cut every
    episode of a trial at once);
  - ``orchestrator=`` (a remote Orchestrator, e.g. the real Cogment one) or ``datalog=``: Cogment
    tools (trial lists, datalog, replays) then see one episode per trial, as they expect.

  A spec fetched with ``GetSpec`` is what tells a cogment_gym service (only ours serve
  ``EnvSpecSP``); a facade cannot reach a service that has none without being given its spaces,
  so the options alone decide, before anything is opened.

The choice changes no result: both strategies take every reset ``SyncVectorEnv`` takes (any seed
list, any ``options["reset_mask"]``) and one options dict per sub-environment (SB3's
``set_options``), and return what it returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cogment_gym.envs.options import ConnectionOptions

__all__ = ["choose_envs_per_trial", "per_trial_reasons"]


def per_trial_reasons(options: ConnectionOptions) -> list[str]:
    """Why these options need one trial per sub-environment (empty: batched trials can run)."""
    reasons = []
    if options.observation_space is not None:
        reasons.append("the environment service is described by observation_space/action_space (it cannot batch)")
    if options.render_mode is not None:
        reasons.append(f"render_mode={options.render_mode!r} (batched trials do not render)")
    if options.max_steps:
        reasons.append(f"max_steps={options.max_steps}")
    if options.orchestrator is not None:
        reasons.append("a remote orchestrator")
    if options.datalog is not None:
        reasons.append("datalog")
    return reasons


def choose_envs_per_trial(num_envs: int, envs_per_trial: Any, options: ConnectionOptions) -> int:
    """``envs_per_trial`` as given (checked), or chosen by the rule of the module doc when None.

    Raises:
        ValueError: ``envs_per_trial`` is not an int >= 1 dividing ``num_envs``, or batched
            trials were asked for with ``render_mode`` / ``max_steps``.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
    n = int(num_envs)
    if envs_per_trial is None:
        if per_trial_reasons(options):
            return 1
        services = max(1, len(options.endpoints))
        trials = next((t for t in range(services, n + 1, services) if n % t == 0), n)
        return n // trials
    if isinstance(envs_per_trial, bool) or not isinstance(envs_per_trial, (int, np.integer)) or envs_per_trial < 1:
        raise ValueError(f"envs_per_trial must be an int >= 1, got {envs_per_trial!r} (or None: chosen from num_envs and the services)")
    k = int(envs_per_trial)
    if n % k:
        raise ValueError(f"envs_per_trial must divide num_envs: got num_envs={n}, envs_per_trial={k}")
    if k > 1 and options.render_mode is not None:
        raise ValueError(f"batched trials (envs_per_trial={k}) do not render; got render_mode={options.render_mode!r}")
    if k > 1 and options.max_steps:
        raise ValueError(
            f"batched trials (envs_per_trial={k}) carry many episodes: max_steps={options.max_steps} would cut all of "
            "them at once; limit episodes with the environment's TimeLimit instead"
        )
    return k
