from cogment_gym._proto.cogment.api import common_pb2 as _common_pb2
from cogment_gym._proto.cogment.api import environment_pb2 as _environment_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunTrialDatalogInput(_message.Message):
    __slots__ = ("trial_params", "sample")
    TRIAL_PARAMS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    trial_params: _common_pb2.TrialParams
    sample: DatalogSample
    def __init__(self, trial_params: _Optional[_Union[_common_pb2.TrialParams, _Mapping]] = ..., sample: _Optional[_Union[DatalogSample, _Mapping]] = ...) -> None: ...

class RunTrialDatalogOutput(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SampleInfo(_message.Message):
    __slots__ = ("out_of_sync", "tick_id", "timestamp", "state", "special_events")
    OUT_OF_SYNC_FIELD_NUMBER: _ClassVar[int]
    TICK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPECIAL_EVENTS_FIELD_NUMBER: _ClassVar[int]
    out_of_sync: bool
    tick_id: int
    timestamp: int
    state: _common_pb2.TrialState
    special_events: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, out_of_sync: bool = ..., tick_id: _Optional[int] = ..., timestamp: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.TrialState, str]] = ..., special_events: _Optional[_Iterable[str]] = ...) -> None: ...

class DatalogSample(_message.Message):
    __slots__ = ("info", "observations", "actions", "rewards", "messages", "default_actors", "unavailable_actors")
    INFO_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ACTORS_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_ACTORS_FIELD_NUMBER: _ClassVar[int]
    info: SampleInfo
    observations: _environment_pb2.ObservationSet
    actions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Action]
    rewards: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reward]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    default_actors: _containers.RepeatedScalarFieldContainer[int]
    unavailable_actors: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, info: _Optional[_Union[SampleInfo, _Mapping]] = ..., observations: _Optional[_Union[_environment_pb2.ObservationSet, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[_common_pb2.Action, _Mapping]]] = ..., rewards: _Optional[_Iterable[_Union[_common_pb2.Reward, _Mapping]]] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., default_actors: _Optional[_Iterable[int]] = ..., unavailable_actors: _Optional[_Iterable[int]] = ...) -> None: ...

class TrialConfig_v1(_message.Message):
    __slots__ = ("content",)
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    def __init__(self, content: _Optional[bytes] = ...) -> None: ...

class ActorConfig_v1(_message.Message):
    __slots__ = ("content",)
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    def __init__(self, content: _Optional[bytes] = ...) -> None: ...

class EnvironmentConfig_v1(_message.Message):
    __slots__ = ("content",)
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    def __init__(self, content: _Optional[bytes] = ...) -> None: ...

class EnvironmentParams_v1(_message.Message):
    __slots__ = ("endpoint", "config", "implementation")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    config: EnvironmentConfig_v1
    implementation: str
    def __init__(self, endpoint: _Optional[str] = ..., config: _Optional[_Union[EnvironmentConfig_v1, _Mapping]] = ..., implementation: _Optional[str] = ...) -> None: ...

class ActorParams_v1(_message.Message):
    __slots__ = ("name", "actor_class", "endpoint", "implementation", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_CLASS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor_class: str
    endpoint: str
    implementation: str
    config: ActorConfig_v1
    def __init__(self, name: _Optional[str] = ..., actor_class: _Optional[str] = ..., endpoint: _Optional[str] = ..., implementation: _Optional[str] = ..., config: _Optional[_Union[ActorConfig_v1, _Mapping]] = ...) -> None: ...

class TrialParams_v1(_message.Message):
    __slots__ = ("trial_config", "environment", "actors", "max_steps", "max_inactivity")
    TRIAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_INACTIVITY_FIELD_NUMBER: _ClassVar[int]
    trial_config: TrialConfig_v1
    environment: EnvironmentParams_v1
    actors: _containers.RepeatedCompositeFieldContainer[ActorParams_v1]
    max_steps: int
    max_inactivity: int
    def __init__(self, trial_config: _Optional[_Union[TrialConfig_v1, _Mapping]] = ..., environment: _Optional[_Union[EnvironmentParams_v1, _Mapping]] = ..., actors: _Optional[_Iterable[_Union[ActorParams_v1, _Mapping]]] = ..., max_steps: _Optional[int] = ..., max_inactivity: _Optional[int] = ...) -> None: ...

class ObservationData_v1(_message.Message):
    __slots__ = ("content", "snapshot")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    snapshot: bool
    def __init__(self, content: _Optional[bytes] = ..., snapshot: bool = ...) -> None: ...

class ObservationSet_v1(_message.Message):
    __slots__ = ("tick_id", "timestamp", "observations", "actors_map")
    TICK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    ACTORS_MAP_FIELD_NUMBER: _ClassVar[int]
    tick_id: int
    timestamp: int
    observations: _containers.RepeatedCompositeFieldContainer[ObservationData_v1]
    actors_map: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, tick_id: _Optional[int] = ..., timestamp: _Optional[int] = ..., observations: _Optional[_Iterable[_Union[ObservationData_v1, _Mapping]]] = ..., actors_map: _Optional[_Iterable[int]] = ...) -> None: ...

class Action_v1(_message.Message):
    __slots__ = ("content", "tick_id")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TICK_ID_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    tick_id: int
    def __init__(self, content: _Optional[bytes] = ..., tick_id: _Optional[int] = ...) -> None: ...

class RewardSource_v1(_message.Message):
    __slots__ = ("sender_name", "value", "confidence", "user_data")
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    sender_name: str
    value: float
    confidence: float
    user_data: _any_pb2.Any
    def __init__(self, sender_name: _Optional[str] = ..., value: _Optional[float] = ..., confidence: _Optional[float] = ..., user_data: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class Reward_v1(_message.Message):
    __slots__ = ("receiver_name", "tick_id", "value", "sources")
    RECEIVER_NAME_FIELD_NUMBER: _ClassVar[int]
    TICK_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    receiver_name: str
    tick_id: int
    value: float
    sources: _containers.RepeatedCompositeFieldContainer[RewardSource_v1]
    def __init__(self, receiver_name: _Optional[str] = ..., tick_id: _Optional[int] = ..., value: _Optional[float] = ..., sources: _Optional[_Iterable[_Union[RewardSource_v1, _Mapping]]] = ...) -> None: ...

class Message_v1(_message.Message):
    __slots__ = ("tick_id", "sender_name", "receiver_name", "payload")
    TICK_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    tick_id: int
    sender_name: str
    receiver_name: str
    payload: _any_pb2.Any
    def __init__(self, tick_id: _Optional[int] = ..., sender_name: _Optional[str] = ..., receiver_name: _Optional[str] = ..., payload: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class DatalogSample_v1(_message.Message):
    __slots__ = ("user_id", "observations", "actions", "rewards", "messages", "trial_data")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TRIAL_DATA_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    observations: ObservationSet_v1
    actions: _containers.RepeatedCompositeFieldContainer[Action_v1]
    rewards: _containers.RepeatedCompositeFieldContainer[Reward_v1]
    messages: _containers.RepeatedCompositeFieldContainer[Message_v1]
    trial_data: TrialData_v1
    def __init__(self, user_id: _Optional[str] = ..., observations: _Optional[_Union[ObservationSet_v1, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[Action_v1, _Mapping]]] = ..., rewards: _Optional[_Iterable[_Union[Reward_v1, _Mapping]]] = ..., messages: _Optional[_Iterable[_Union[Message_v1, _Mapping]]] = ..., trial_data: _Optional[_Union[TrialData_v1, _Mapping]] = ...) -> None: ...

class TrialData_v1(_message.Message):
    __slots__ = ("tick_id", "timestamp", "state")
    TICK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    tick_id: int
    timestamp: int
    state: _common_pb2.TrialState
    def __init__(self, tick_id: _Optional[int] = ..., timestamp: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.TrialState, str]] = ...) -> None: ...
