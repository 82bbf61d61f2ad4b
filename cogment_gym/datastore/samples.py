"""Recorded ``DatalogSample`` -> ``StoredTrialSample`` (what ``TrialDatastoreSP`` answers), and
the actor / field filters of ``RetrieveSamples``, as the Cogment datastore does them.

- One ``StoredTrialActorSample`` per actor (index in ``TrialParams.actors``); each observation
  payload is stored once and referenced by every actor ``actors_map`` gives it to.
- An actor's action payload is referenced unless the Orchestrator logged a placeholder (no
  action at that tick: ``tick_id`` -2 and no content).
- Rewards go to their receivers (``name``, ``*``, ``*.*``, ``class.*``, ``class.name``), each
  source as a received reward (and a sent one for its sender, when the sender is an actor);
  ``reward`` is the receivers' confidence-weighted average. -1 stands for the environment.
- Messages are referenced by their receiver and their sender.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2, trial_datastore_pb2 as ds_pb2

__all__ = ["SampleFilter", "stored_sample"]

_NO_ACTION_TICK = -2
F = ds_pb2.StoredTrialSampleField


def _receivers(name: str, actors: Sequence[common_pb2.ActorParams], indices: dict[str, int]) -> list[int]:
    if name in ("*", "*.*"):
        return list(range(len(actors)))
    if "." in name:
        actor_class, _, actor_name = name.partition(".")
        return [i for i, a in enumerate(actors) if a.actor_class == actor_class and actor_name in ("*", a.name)]
    index = indices.get(name)
    return [] if index is None else [index]


def stored_sample(
    sample: datalog_pb2.DatalogSample, trial_id: str, actors: Sequence[common_pb2.ActorParams], indices: dict[str, int] | None = None
) -> ds_pb2.StoredTrialSample:
    """The datastore's view of one recorded sample."""
    if indices is None:
        indices = {a.name: i for i, a in enumerate(actors)}
    stored = ds_pb2.StoredTrialSample(
        trial_id=trial_id, tick_id=sample.info.tick_id, timestamp=sample.info.timestamp, state=sample.info.state
    )
    per_actor = [stored.actor_samples.add(actor=i) for i in range(len(actors))]
    payloads = stored.payloads
    if sample.HasField("observations"):
        first = len(payloads)
        payloads.extend(sample.observations.observations)
        for actor, obs_index in enumerate(sample.observations.actors_map):
            if actor < len(per_actor) and 0 <= obs_index < len(sample.observations.observations):
                per_actor[actor].observation = first + obs_index
    for actor, action in enumerate(sample.actions):
        if actor >= len(per_actor) or (action.tick_id == _NO_ACTION_TICK and not action.content):
            continue
        per_actor[actor].action = len(payloads)
        payloads.append(action.content)
    totals: dict[int, list[tuple[float, float]]] = {}
    for reward in sample.rewards:
        for receiver in _receivers(reward.receiver_name, actors, indices):
            sources = totals.setdefault(receiver, [])
            for source in reward.sources:
                sources.append((source.value, source.confidence))
                user_data: int | None = None
                if source.HasField("user_data") and source.user_data.value:
                    user_data = len(payloads)
                    payloads.append(source.user_data.value)
                sender = indices.get(source.sender_name, -1)
                received = per_actor[receiver].received_rewards.add(sender=sender, reward=source.value, confidence=source.confidence)
                if user_data is not None:
                    received.user_data = user_data
                if sender >= 0:
                    sent = per_actor[sender].sent_rewards.add(receiver=receiver, reward=source.value, confidence=source.confidence)
                    if user_data is not None:
                        sent.user_data = user_data
    for receiver, sources in totals.items():
        weighted = sum(v * c for v, c in sources if c > 0)
        confidence = sum(c for _, c in sources if c > 0)
        per_actor[receiver].reward = weighted / confidence if confidence > 0 else 0.0
    for message in sample.messages:
        index = len(payloads)
        payloads.append(message.payload.value)
        receiver = indices.get(message.receiver_name, -1)
        sender = indices.get(message.sender_name, -1)
        if receiver >= 0:
            per_actor[receiver].received_messages.add(sender=sender, payload=index)
        if sender >= 0:
            per_actor[sender].sent_messages.add(receiver=receiver, payload=index)
    return stored


class SampleFilter:
    """``RetrieveSamplesRequest``'s actor and field filters, applied to one trial's samples."""

    def __init__(self, request: ds_pb2.RetrieveSamplesRequest, actors: Sequence[common_pb2.ActorParams]) -> None:
        names, classes, impls = set(request.actor_names), set(request.actor_classes), set(request.actor_implementations)
        self.actors = [
            (not names or a.name in names) and (not classes or a.actor_class in classes) and (not impls or a.implementation in impls)
            for a in actors
        ]
        fields = {f for f in request.selected_sample_fields if f != F.STORED_TRIAL_SAMPLE_FIELD_UNKNOWN}
        every = set(F.values()) - {F.STORED_TRIAL_SAMPLE_FIELD_UNKNOWN}
        self.fields = fields if request.selected_sample_fields else every
        self.selects_all = all(self.actors) and self.fields == every

    def apply(self, sample: ds_pb2.StoredTrialSample) -> ds_pb2.StoredTrialSample:
        """The sample with only the selected actors and fields; payloads nothing selected refers
        to are emptied (their indexes stay valid)."""
        if self.selects_all:
            return sample
        out = ds_pb2.StoredTrialSample(
            user_id=sample.user_id, trial_id=sample.trial_id, tick_id=sample.tick_id, timestamp=sample.timestamp, state=sample.state
        )
        kept: set[int] = set()
        fields = self.fields
        for actor_sample in sample.actor_samples:
            if actor_sample.actor >= len(self.actors) or not self.actors[actor_sample.actor]:
                continue
            entry = out.actor_samples.add(actor=actor_sample.actor)
            if actor_sample.HasField("observation") and F.STORED_TRIAL_SAMPLE_FIELD_OBSERVATION in fields:
                entry.observation = actor_sample.observation
                kept.add(actor_sample.observation)
            if actor_sample.HasField("action") and F.STORED_TRIAL_SAMPLE_FIELD_ACTION in fields:
                entry.action = actor_sample.action
                kept.add(actor_sample.action)
            if actor_sample.HasField("reward") and F.STORED_TRIAL_SAMPLE_FIELD_REWARD in fields:
                entry.reward = actor_sample.reward
            _copy(entry.received_rewards, actor_sample.received_rewards, F.STORED_TRIAL_SAMPLE_FIELD_RECEIVED_REWARDS in fields, kept, "user_data")
            _copy(entry.sent_rewards, actor_sample.sent_rewards, F.STORED_TRIAL_SAMPLE_FIELD_SENT_REWARDS in fields, kept, "user_data")
            _copy(entry.received_messages, actor_sample.received_messages, F.STORED_TRIAL_SAMPLE_FIELD_RECEIVED_MESSAGES in fields, kept, "payload")
            _copy(entry.sent_messages, actor_sample.sent_messages, F.STORED_TRIAL_SAMPLE_FIELD_SENT_MESSAGES in fields, kept, "payload")
        out.payloads.extend(payload if i in kept else b"" for i, payload in enumerate(sample.payloads))
        return out


def _copy(target: Any, source: Iterable[Any], selected: bool, kept: set[int], index_field: str) -> None:
    if not selected:
        return
    for item in source:
        target.add().CopyFrom(item)
        if index_field == "payload" or item.HasField(index_field):
            kept.add(getattr(item, index_field))
