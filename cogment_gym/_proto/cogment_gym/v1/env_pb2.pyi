from cogment_gym._proto.cogment_gym.v1 import spaces_pb2 as _spaces_pb2
from cogment_gym._proto.cogment_gym.v1 import tensor_pb2 as _tensor_pb2
from cogment_gym._proto.cogment_gym.v1 import values_pb2 as _values_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AutoresetMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTORESET_MODE_NEXT_STEP: _ClassVar[AutoresetMode]
    AUTORESET_MODE_SAME_STEP: _ClassVar[AutoresetMode]

class AgentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATUS_ACTING: _ClassVar[AgentStatus]
    AGENT_STATUS_WAITING: _ClassVar[AgentStatus]
    AGENT_STATUS_LEAVING: _ClassVar[AgentStatus]
    AGENT_STATUS_ABSENT: _ClassVar[AgentStatus]

class MultiAgentApi(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MULTI_AGENT_API_UNSPECIFIED: _ClassVar[MultiAgentApi]
    MULTI_AGENT_API_AEC: _ClassVar[MultiAgentApi]
    MULTI_AGENT_API_PARALLEL: _ClassVar[MultiAgentApi]
AUTORESET_MODE_NEXT_STEP: AutoresetMode
AUTORESET_MODE_SAME_STEP: AutoresetMode
AGENT_STATUS_ACTING: AgentStatus
AGENT_STATUS_WAITING: AgentStatus
AGENT_STATUS_LEAVING: AgentStatus
AGENT_STATUS_ABSENT: AgentStatus
MULTI_AGENT_API_UNSPECIFIED: MultiAgentApi
MULTI_AGENT_API_AEC: MultiAgentApi
MULTI_AGENT_API_PARALLEL: MultiAgentApi

class EnvConfig(_message.Message):
    __slots__ = ("seed", "options", "render_mode", "omit_reward_messages", "state_actors", "num_envs", "autoreset_mode", "instance_key", "resets")
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RENDER_MODE_FIELD_NUMBER: _ClassVar[int]
    OMIT_REWARD_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    STATE_ACTORS_FIELD_NUMBER: _ClassVar[int]
    NUM_ENVS_FIELD_NUMBER: _ClassVar[int]
    AUTORESET_MODE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_KEY_FIELD_NUMBER: _ClassVar[int]
    RESETS_FIELD_NUMBER: _ClassVar[int]
    seed: int
    options: _values_pb2.Value
    render_mode: str
    omit_reward_messages: bool
    state_actors: _containers.RepeatedScalarFieldContainer[str]
    num_envs: int
    autoreset_mode: AutoresetMode
    instance_key: str
    resets: _containers.RepeatedCompositeFieldContainer[SubEnvReset]
    def __init__(self, seed: _Optional[int] = ..., options: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., render_mode: _Optional[str] = ..., omit_reward_messages: bool = ..., state_actors: _Optional[_Iterable[str]] = ..., num_envs: _Optional[int] = ..., autoreset_mode: _Optional[_Union[AutoresetMode, str]] = ..., instance_key: _Optional[str] = ..., resets: _Optional[_Iterable[_Union[SubEnvReset, _Mapping]]] = ...) -> None: ...

class SubEnvReset(_message.Message):
    __slots__ = ("seed", "options", "index", "deferred")
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_FIELD_NUMBER: _ClassVar[int]
    seed: int
    options: _values_pb2.Value
    index: int
    deferred: bool
    def __init__(self, seed: _Optional[int] = ..., options: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., index: _Optional[int] = ..., deferred: bool = ...) -> None: ...

class BatchedReset(_message.Message):
    __slots__ = ("resets",)
    RESETS_FIELD_NUMBER: _ClassVar[int]
    resets: _containers.RepeatedCompositeFieldContainer[SubEnvReset]
    def __init__(self, resets: _Optional[_Iterable[_Union[SubEnvReset, _Mapping]]] = ...) -> None: ...

class BatchedStep(_message.Message):
    __slots__ = ("rewards", "terminations", "truncations", "infos", "ends", "reset_indices")
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    TERMINATIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATIONS_FIELD_NUMBER: _ClassVar[int]
    INFOS_FIELD_NUMBER: _ClassVar[int]
    ENDS_FIELD_NUMBER: _ClassVar[int]
    RESET_INDICES_FIELD_NUMBER: _ClassVar[int]
    rewards: _tensor_pb2.Tensor
    terminations: _tensor_pb2.Tensor
    truncations: _tensor_pb2.Tensor
    infos: _containers.RepeatedCompositeFieldContainer[_values_pb2.Value]
    ends: _containers.RepeatedCompositeFieldContainer[SubEnvEnd]
    reset_indices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rewards: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., terminations: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., truncations: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., infos: _Optional[_Iterable[_Union[_values_pb2.Value, _Mapping]]] = ..., ends: _Optional[_Iterable[_Union[SubEnvEnd, _Mapping]]] = ..., reset_indices: _Optional[_Iterable[int]] = ...) -> None: ...

class SubEnvEnd(_message.Message):
    __slots__ = ("index", "observation", "info")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    index: int
    observation: _values_pb2.Value
    info: _values_pb2.Value
    def __init__(self, index: _Optional[int] = ..., observation: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., info: _Optional[_Union[_values_pb2.Value, _Mapping]] = ...) -> None: ...

class ActorConfig(_message.Message):
    __slots__ = ("settings", "observation_space", "action_space")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_SPACE_FIELD_NUMBER: _ClassVar[int]
    ACTION_SPACE_FIELD_NUMBER: _ClassVar[int]
    settings: _values_pb2.Value
    observation_space: _spaces_pb2.Space
    action_space: _spaces_pb2.Space
    def __init__(self, settings: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., observation_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ..., action_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ...) -> None: ...

class ObservationPayload(_message.Message):
    __slots__ = ("value", "reward", "terminated", "truncated", "info", "frame", "text_frame", "status", "agent", "cumulative_reward", "agent_selection", "agents", "observation_space", "action_space", "state", "batch", "exact", "step_agents")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FRAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_REWARD_FIELD_NUMBER: _ClassVar[int]
    AGENT_SELECTION_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_SPACE_FIELD_NUMBER: _ClassVar[int]
    ACTION_SPACE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    STEP_AGENTS_FIELD_NUMBER: _ClassVar[int]
    value: _values_pb2.Value
    reward: float
    terminated: bool
    truncated: bool
    info: _values_pb2.Value
    frame: _tensor_pb2.Tensor
    text_frame: str
    status: AgentStatus
    agent: str
    cumulative_reward: float
    agent_selection: str
    agents: _containers.RepeatedScalarFieldContainer[str]
    observation_space: _spaces_pb2.Space
    action_space: _spaces_pb2.Space
    state: _values_pb2.Value
    batch: BatchedStep
    exact: ExactReturns
    step_agents: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, value: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., reward: _Optional[float] = ..., terminated: bool = ..., truncated: bool = ..., info: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., frame: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., text_frame: _Optional[str] = ..., status: _Optional[_Union[AgentStatus, str]] = ..., agent: _Optional[str] = ..., cumulative_reward: _Optional[float] = ..., agent_selection: _Optional[str] = ..., agents: _Optional[_Iterable[str]] = ..., observation_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ..., action_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ..., state: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., batch: _Optional[_Union[BatchedStep, _Mapping]] = ..., exact: _Optional[_Union[ExactReturns, _Mapping]] = ..., step_agents: _Optional[_Iterable[str]] = ...) -> None: ...

class ExactReturns(_message.Message):
    __slots__ = ("reward", "terminated", "truncated", "cumulative_reward")
    REWARD_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_REWARD_FIELD_NUMBER: _ClassVar[int]
    reward: _values_pb2.Value
    terminated: _values_pb2.Value
    truncated: _values_pb2.Value
    cumulative_reward: _values_pb2.Value
    def __init__(self, reward: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., terminated: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., truncated: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., cumulative_reward: _Optional[_Union[_values_pb2.Value, _Mapping]] = ...) -> None: ...

class ActionPayload(_message.Message):
    __slots__ = ("value", "reset")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    value: _values_pb2.Value
    reset: BatchedReset
    def __init__(self, value: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., reset: _Optional[_Union[BatchedReset, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("implementation", "actors", "render_modes", "metadata", "gym_id", "multi_agent", "max_episode_steps", "api", "agent_slots", "state_space", "local_endpoint", "service_id")
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    RENDER_MODES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    GYM_ID_FIELD_NUMBER: _ClassVar[int]
    MULTI_AGENT_FIELD_NUMBER: _ClassVar[int]
    MAX_EPISODE_STEPS_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    AGENT_SLOTS_FIELD_NUMBER: _ClassVar[int]
    STATE_SPACE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    implementation: str
    actors: _containers.RepeatedCompositeFieldContainer[ActorSpec]
    render_modes: _containers.RepeatedScalarFieldContainer[str]
    metadata: _values_pb2.Value
    gym_id: str
    multi_agent: bool
    max_episode_steps: int
    api: MultiAgentApi
    agent_slots: bool
    state_space: _spaces_pb2.Space
    local_endpoint: str
    service_id: str
    def __init__(self, implementation: _Optional[str] = ..., actors: _Optional[_Iterable[_Union[ActorSpec, _Mapping]]] = ..., render_modes: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_values_pb2.Value, _Mapping]] = ..., gym_id: _Optional[str] = ..., multi_agent: bool = ..., max_episode_steps: _Optional[int] = ..., api: _Optional[_Union[MultiAgentApi, str]] = ..., agent_slots: bool = ..., state_space: _Optional[_Union[_spaces_pb2.Space, _Mapping]] = ..., local_endpoint: _Optional[str] = ..., service_id: _Optional[str] = ...) -> None: ...

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
