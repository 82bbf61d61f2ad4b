"""Trial parameter files: loading (Cogment's format, our readable configs), errors, dumping, and a
file's default params driving a real trial."""

from __future__ import annotations

import base64
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import decode, decode_object, encode_object
from cogment_gym.errors import TrialParamsError
from cogment_gym.orchestrator.params import (
    DEFAULT_MAX_INACTIVITY,
    dump_trial_params,
    load_trial_params,
    parse_trial_params,
    trial_params_from_dict,
)

from .peers import ClientActor, Lifecycle, orchestrator, run

FULL = """
trial_params:
  properties: {team: blue, version: 2, flag: true}
  max_steps: 100
  max_inactivity: 0
  nb_buffered_ticks: 5
  trial_config: {content: AAEC}
  datalog:
    endpoint: grpc://127.0.0.1:9003
    exclude_fields: [observations, Rewards]
  environment:
    name: world
    endpoint: grpc://127.0.0.1:9001
    implementation: CartPole-v1
    config: {content: "/w=="}
  actors:
    - name: alice
      actor_class: player
      endpoint: cogment://client
      implementation: human
      config: {content: AQ}
      initial_connection_timeout: 2.5
      response_timeout: 1
      optional: true
      default_action: {content: CgIQAQ==}
    - name: bob
      actor_class: player
      endpoint: grpc://127.0.0.1:9002
"""


def test_load_every_field(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(FULL)
    params = load_trial_params(path)
    assert dict(params.properties) == {"team": "blue", "version": "2", "flag": "true"}
    assert (params.max_steps, params.max_inactivity, params.nb_buffered_ticks) == (100, 0, 5)
    assert params.trial_config.content == b"\x00\x01\x02"
    assert params.datalog.endpoint == "grpc://127.0.0.1:9003"
    assert list(params.datalog.exclude_fields) == ["observations", "Rewards"]
    env = params.environment
    assert (env.name, env.endpoint, env.implementation, env.config.content) == ("world", "grpc://127.0.0.1:9001", "CartPole-v1", b"\xff")
    alice, bob = params.actors
    assert (alice.name, alice.actor_class, alice.endpoint, alice.implementation) == ("alice", "player", "cogment://client", "human")
    assert alice.config.content == b"\x01"  # base64 without padding, as protobuf JSON accepts
    assert (alice.initial_connection_timeout, alice.response_timeout, alice.optional) == (2.5, 1.0, True)
    assert alice.default_action.content == base64.b64decode("CgIQAQ==")
    assert (bob.name, bob.endpoint, bob.optional) == ("bob", "grpc://127.0.0.1:9002", False)
    assert not bob.HasField("config") and not bob.HasField("default_action")


def test_camel_case_strings_empty_values_and_max_inactivity_default() -> None:
    params = parse_trial_params(
        """
trial_params:
  maxSteps: "7"
  nbBufferedTicks: 3
  environment: {endpoint: "grpc://127.0.0.1:1", implementation: }
  actors:
    - {name: a, actorClass: c, endpoint: client, responseTimeout: "0.5", initialConnectionTimeout: 3, defaultAction: {content: "-_8"}}
"""
    )
    assert (params.max_steps, params.nb_buffered_ticks) == (7, 3)
    assert params.max_inactivity == DEFAULT_MAX_INACTIVITY == 30
    assert params.environment.implementation == ""
    (actor,) = params.actors
    assert (actor.actor_class, actor.response_timeout, actor.initial_connection_timeout) == ("c", 0.5, 3.0)
    assert actor.default_action.content == b"\xfb\xff"  # URL-safe alphabet
    # Mappings (as sent by code, not files) have no file default.
    assert trial_params_from_dict({"max_steps": 1}).max_inactivity == 0
    assert parse_trial_params("trial_params:\n").max_inactivity == 30


def test_readable_environment_and_actor_configs() -> None:
    params = parse_trial_params(
        """
trial_params:
  environment:
    endpoint: grpc://127.0.0.1:1
    config: {seed: 42, render_mode: rgb_array, options: {low: -0.1, names: [a, b]}}
  actors:
    - name: a
      actor_class: c
      endpoint: grpc://127.0.0.1:2
      config: {settings: {epsilon: 0.1, layers: [64, 64]}}
    - {name: b, actor_class: c, endpoint: grpc://127.0.0.1:2, config: {}}
"""
    )
    config = env_pb2.EnvConfig.FromString(params.environment.config.content)
    assert config.HasField("seed") and config.seed == 42 and config.render_mode == "rgb_array"
    assert decode_object(config.options) == {"low": -0.1, "names": ["a", "b"]}
    # Exactly the bytes CogmentEnv sends for reset(seed=42, options=...).
    expected = env_pb2.EnvConfig(seed=42, render_mode="rgb_array")
    expected.options.CopyFrom(encode_object({"low": -0.1, "names": ["a", "b"]}, "options"))
    assert params.environment.config.content == expected.SerializeToString()
    settings = env_pb2.ActorConfig.FromString(params.actors[0].config.content).settings
    assert decode_object(settings) == {"epsilon": 0.1, "layers": [64, 64]}
    # An empty mapping is a present, empty config (presence matters to Cogment).
    assert params.actors[1].HasField("config") and params.actors[1].config.content == b""
    # No seed given: no seed field at all (reset(seed=None)).
    unseeded = parse_trial_params("trial_params: {environment: {endpoint: 'grpc://h:1', config: {render_mode: ansi}}}")
    assert not env_pb2.EnvConfig.FromString(unseeded.environment.config.content).HasField("seed")


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("trial_params: {max_step: 3}", "trial_params.max_step", "unknown key 'max_step' in TrialParams"),
        ("trial_params: {actors: [{name: a, colour: red}]}", "trial_params.actors[0].colour", "unknown key 'colour'"),
        ("trial_params: {max_steps: ten}", "trial_params.max_steps", "expected an integer"),
        ("trial_params: {max_steps: -1}", "trial_params.max_steps", "out of range"),
        ("trial_params: {max_steps: 1.5}", "trial_params.max_steps", "expected an integer"),
        ("trial_params: {max_steps: true}", "trial_params.max_steps", "expected an integer"),
        ("trial_params: {actors: [{optional: 'yes'}]}", "trial_params.actors[0].optional", "expected true or false"),
        ("trial_params: {actors: [{response_timeout: soon}]}", "trial_params.actors[0].response_timeout", "expected a number"),
        ("trial_params: {actors: {name: a}}", "trial_params.actors", "expected a list"),
        ("trial_params: {environment: [grpc://h:1]}", "trial_params.environment", "expected a mapping"),
        ("trial_params: {environment: {name: 7}}", "trial_params.environment.name", "expected a string"),
        ("trial_params: {trial_config: {content: '!!'}}", "trial_params.trial_config.content", "not valid base64"),
        ("trial_params: {properties: {a: [1]}}", "trial_params.properties.a", "must be a string"),
        ("trial_params: {max_steps: 1, maxSteps: 2}", "trial_params.maxSteps", "given twice"),
        ("trial_params: {environment: {config: {seed: -1}}}", "trial_params.environment.config.seed", "non-negative integer seed"),
        ("trial_params: {environment: {config: {seed: 1, content: AA}}}", "trial_params.environment.config.seed", "unknown key 'seed'"),
        ("trial_params: {environment: {config: {colour: red}}}", "trial_params.environment.config.colour", "seed, render_mode, options"),
        ("trial_params: {environment: {config: {options: [1]}}}", "trial_params.environment.config.options", "must be a mapping"),
        ("trial_params: {actors: [{config: {epsilon: 1}}]}", "trial_params.actors[0].config.epsilon", "settings"),
        ("params: {}", "params", "unknown top-level key 'params'"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TrialParamsError) as caught:
        load_trial_params(path)
    assert caught.value.key == key and caught.value.source == str(path)
    assert message in str(caught.value) and str(path) in str(caught.value) and key in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, cogment_gym.errors.CogmentGymError)


@pytest.mark.parametrize(("text", "message"), [("", "expected a mapping"), ("[1]", "expected a mapping"), ("a: [", "not valid YAML"), ("{}", "no top-level 'trial_params'")])
def test_errors_for_bad_documents(text: str, message: str) -> None:
    with pytest.raises(TrialParamsError, match=message) as caught:
        parse_trial_params(text, source="inline.yaml")
    assert str(caught.value).startswith("inline.yaml")


def test_dump_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(FULL)
    params = load_trial_params(path)
    out = tmp_path / "again.yaml"
    text = dump_trial_params(params, out)
    assert out.read_text() == text
    again = load_trial_params(out)
    assert again == params
    assert "max_inactivity: 0" in text  # kept explicit: absent would mean 30 s
    assert "content: CgIQAQ==" in text  # bytes as protobuf JSON writes them
    readable = parse_trial_params("trial_params: {environment: {endpoint: 'grpc://h:1', config: {seed: 1}}, max_inactivity: 12}")
    assert parse_trial_params(dump_trial_params(readable)) == readable
    assert parse_trial_params(dump_trial_params(common_pb2.TrialParams())) == common_pb2.TrialParams()


def test_file_default_params_run_a_cogment_gym_env(tmp_path: Path) -> None:
    """A params file using the readable env config drives a served CartPole through a trial."""
    with cogment_gym.serve("CartPole-v1") as env_server:
        path = tmp_path / "cartpole.yaml"
        path.write_text(
            "trial_params:\n"
            "  environment:\n"
            f"    endpoint: {env_server.endpoint}\n"
            "    implementation: CartPole-v1\n"
            "    config: {seed: 3, options: {low: -0.01, high: 0.01}}\n"
            "  actors: [{name: player, actor_class: player, endpoint: cogment://client}]\n"
            "  max_steps: 1\n"
        )

        async def scenario() -> bytes:
            async with orchestrator(default_params=path) as (_, channel):
                trial_id = await Lifecycle(channel).start(config=b"")
                player = ClientActor(channel, trial_id, name="player", act=lambda obs: _cartpole_action(0))
                record = await player.finished()
                assert [o.tick_id for o in record.observations] == [0, 1, 2]
                return record.observations[0].content

        content = run(scenario())
    reference = gym.make("CartPole-v1")
    expected, _ = reference.reset(seed=3, options={"low": -0.01, "high": 0.01})
    payload = env_pb2.ObservationPayload.FromString(content)
    np.testing.assert_array_equal(decode(reference.observation_space, payload.value), expected)


def _cartpole_action(action: int) -> bytes:
    from cogment_gym.codec import encode

    return env_pb2.ActionPayload(value=encode(gym.spaces.Discrete(2), action)).SerializeToString()
