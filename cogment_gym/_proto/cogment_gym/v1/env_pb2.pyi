from cogment_gym._proto.cogment_gym.v1 import spaces_pb2 as _spaces_pb2
from cogment_gym._proto.cogment_gym.v1 import tensor_pb2 as _tensor_pb2
from cogment_gym._proto.cogment_gym.v1 import values_pb2 as _values_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnvConfig(_message.Message):
    __slots__ = ("seed", "options", "render_mode", "omit_reward_messages")
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RENDER_MODE_FIELD_NUMBER: _ClassVar[int]
    OMIT_REWARD_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    seed: int
    options: _values_pb2.Value
    render_mode: str
    omit_reward_messages: bool
    def __init__(self, seed: _Optional[int] = ..., options: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., render_mode: _Optional[str] = ..., omit_reward_messages: bool = ...) -> None: ...

class ActorConfig(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: _values_pb2.Value
    def __init__(self, settings: _Optional[_Union[_values_pb2.Value, _Mapping]] = ...) -> None: ...

class ObservationPayload(_message.Message):
    __slots__ = ("value", "reward", "terminated", "truncated", "info", "frame", "text_frame")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FRAME_FIELD_NUMBER: _ClassVar[int]
    value: _values_pb2.Value
    reward: float
    terminated: bool
    truncated: bool
    info: _values_pb2.Value
    frame: _tensor_pb2.Tensor
    text_frame: str
    def __init__(self, value: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., reward: _Optional[float] = ..., terminated: bool = ..., truncated: bool = ..., info: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., frame: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., text_frame: _Optional[str] = ...) -> None: ...

class ActionPayload(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _values_pb2.Value
    def __init__(self, value: _Optional[_Union[_values_pb2.Value, _Mapping]] = ...) -> None: ...

class ActorSpec(_message.Message):
    __slots__ = ("name", "actor_class", "observation_space", "action_space")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_CLASS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_SPACE_FIELD_NUMBER: _ClassVar[int]
    ACTION_SPACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor_class: str
    observation_space: _spaces_pb2.Space
    action_space: _spaces_pb2.Space
    def __init__(self, name: _Optional[str] = ..., actor_class: _Optional[str] = ..., observation_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ..., action_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ...) -> None: ...

class EnvSpec(_message.Message):
    __slots__ = ("implementation", "actors", "render_modes", "metadata", "gym_id", "multi_agent", "max_episode_steps")
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    RENDER_MODES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    GYM_ID_FIELD_NUMBER: _ClassVar[int]
    MULTI_AGENT_FIELD_NUMBER: _ClassVar[int]
    MAX_EPISODE_STEPS_FIELD_NUMBER: _ClassVar[int]
    implementation: str
    actors: _containers.RepeatedCompositeFieldContainer[ActorSpec]
    render_modes: _containers.RepeatedScalarFieldContainer[str]
    metadata: _values_pb2.Value
    gym_id: str
    multi_agent: bool
    max_episode_steps: int
    def __init__(self, implementation: _Optional[str] = ..., actors: _Optional[_Iterable[_Union[ActorSpec, _Mapping]]] = ..., render_modes: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., gym_id: _Optional[str] = ..., multi_agent: bool = ..., max_episode_steps: _Optional[int] = ...) -> None: ...

class GetSpecRequest(_message.Message):
    __slots__ = ("implementation",)
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    implementation: str
    def __init__(self, implementation: _Optional[str] = ...) -> None: ...

class ListImplementationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListImplementationsReply(_message.Message):
    __slots__ = ("implementations",)
    IMPLEMENTATIONS_FIELD_NUMBER: _ClassVar[int]
    implementations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, implementations: _Optional[_Iterable[str]] = ...) -> None: ...
