"""The app of the SDK's integration tests, made at run time (no protoc): its messages (what the
SDK's tests/test_cogment_app/data.proto declares: EnvConfig, TrialConfig, Observation, Action,
MyMessageUserData, MyFeedbackUserData) and a cog_settings-like namespace with its two actor
classes (my_actor_class_1, my_actor_class_2). Runs in the SDK venv only."""

from __future__ import annotations

from types import SimpleNamespace

import cogment
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "cogment_gym_interop_app"


def _messages() -> dict:
    file = descriptor_pb2.FileDescriptorProto(name="cogment_gym_interop_app/data.proto", package=PACKAGE, syntax="proto3")
    layout = {
        "EnvConfig": [("env_config_value", 1, F.TYPE_INT32, "")],
        "TrialConfig": [("env_config", 1, F.TYPE_MESSAGE, f".{PACKAGE}.EnvConfig"), ("trial_config_value", 2, F.TYPE_INT32, "")],
        "Observation": [("observed_value", 1, F.TYPE_INT32, "")],
        "Action": [("action_value", 1, F.TYPE_INT32, "")],
        "MyMessageUserData": [("a_string", 1, F.TYPE_STRING, ""), ("an_int", 3, F.TYPE_INT32, "")],
        "MyFeedbackUserData": [("a_bool", 1, F.TYPE_BOOL, ""), ("a_float", 2, F.TYPE_FLOAT, "")],
    }
    for name, fields in layout.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, type_name in fields:
            message.field.add(name=field_name, number=number, type=kind, label=F.LABEL_OPTIONAL, type_name=type_name or None)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in layout}


data_pb2 = SimpleNamespace(**_messages())

cog_settings = SimpleNamespace(
    actor_classes=cogment.actor.ActorClassList(
        cogment.actor.ActorClass(name="my_actor_class_1", config_type=None, action_space=data_pb2.Action, observation_space=data_pb2.Observation),
        cogment.actor.ActorClass(name="my_actor_class_2", config_type=None, action_space=data_pb2.Action, observation_space=data_pb2.Observation),
    ),
    trial=SimpleNamespace(config_type=data_pb2.TrialConfig),
    environment=SimpleNamespace(config_type=data_pb2.EnvConfig),
)
