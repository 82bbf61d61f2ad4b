from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TrialFileHeader(_message.Message):
    __slots__ = ("trial_id", "user_id", "trial_params", "started", "writer")
    TRIAL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAL_PARAMS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    trial_id: str
    user_id: str
    trial_params: bytes
    started: int
    writer: str
    def __init__(self, trial_id: _Optional[str] = ..., user_id: _Optional[str] = ..., trial_params: _Optional[bytes] = ..., started: _Optional[int] = ..., writer: _Optional[str] = ...) -> None: ...

class TrialFileEnd(_message.Message):
    __slots__ = ("ended", "samples", "last_state", "error")
    ENDED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LAST_STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ended: int
    samples: int
    last_state: int
    error: str
    def __init__(self, ended: _Optional[int] = ..., samples: _Optional[int] = ..., last_state: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
