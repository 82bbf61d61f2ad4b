from cogment_gym._proto.cogment_gym.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MapType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAP_TYPE_DICT: _ClassVar[MapType]
    MAP_TYPE_ORDERED_DICT: _ClassVar[MapType]
MAP_TYPE_DICT: MapType
MAP_TYPE_ORDERED_DICT: MapType

class NoneValue(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BigInt(_message.Message):
    __slots__ = ("decimal",)
    DECIMAL_FIELD_NUMBER: _ClassVar[int]
    decimal: str
    def __init__(self, decimal: _Optional[str] = ...) -> None: ...

class MapEntry(_message.Message):
    __slots__ = ("str_key", "int_key", "value")
    STR_KEY_FIELD_NUMBER: _ClassVar[int]
    INT_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    str_key: str
    int_key: int
    value: Value
    def __init__(self, str_key: _Optional[str] = ..., int_key: _Optional[int] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class MapValue(_message.Message):
    __slots__ = ("entries", "type")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MapEntry]
    type: MapType
    def __init__(self, entries: _Optional[_Iterable[_Union[MapEntry, _Mapping]]] = ..., type: _Optional[_Union[MapType, str]] = ...) -> None: ...

class ListValue(_message.Message):
    __slots__ = ("items", "as_list")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    AS_LIST_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Value]
    as_list: bool
    def __init__(self, items: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., as_list: bool = ...) -> None: ...

class GraphValue(_message.Message):
    __slots__ = ("nodes", "edges", "edge_links")
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    EDGE_LINKS_FIELD_NUMBER: _ClassVar[int]
    nodes: _tensor_pb2.Tensor
    edges: _tensor_pb2.Tensor
    edge_links: _tensor_pb2.Tensor
    def __init__(self, nodes: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., edges: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., edge_links: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class OneOfValue(_message.Message):
    __slots__ = ("index", "value", "int_index")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    value: Value
    int_index: bool
    def __init__(self, index: _Optional[int] = ..., value: _Optional[_Union[Value, _Mapping]] = ..., int_index: bool = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("array", "scalar", "text", "dict", "tuple", "list", "graph", "one_of", "bool_value", "int_value", "float_value", "none", "bytes_value", "big_int", "custom", "exact")
    ARRAY_FIELD_NUMBER: _ClassVar[int]
    SCALAR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DICT_FIELD_NUMBER: _ClassVar[int]
    TUPLE_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    ONE_OF_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    NONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    BIG_INT_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    array: _tensor_pb2.Tensor
    scalar: _tensor_pb2.Tensor
    text: str
    dict: MapValue
    tuple: ListValue
    list: ListValue
    graph: GraphValue
    one_of: OneOfValue
    bool_value: bool
    int_value: int
    float_value: float
    none: NoneValue
    bytes_value: bytes
    big_int: BigInt
    custom: bytes
    exact: Value
    def __init__(self, array: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., scalar: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., text: _Optional[str] = ..., dict: _Optional[_Union[MapValue, _Mapping]] = ..., tuple: _Optional[_Union[ListValue, _Mapping]] = ..., list: _Optional[_Union[ListValue, _Mapping]] = ..., graph: _Optional[_Union[GraphValue, _Mapping]] = ..., one_of: _Optional[_Union[OneOfValue, _Mapping]] = ..., bool_value: bool = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., none: _Optional[_Union[NoneValue, _Mapping]] = ..., bytes_value: _Optional[bytes] = ..., big_int: _Optional[_Union[BigInt, _Mapping]] = ..., custom: _Optional[bytes] = ..., exact: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
