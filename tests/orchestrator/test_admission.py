"""``orchestrator/admission.py``: which endpoints a trial started over gRPC may name."""

from __future__ import annotations

import pytest

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.errors import EndpointRefusedError, TrialStartError
from cogment_gym.orchestrator.admission import EndpointPolicy, trial_endpoints


def _params(env: str, *actors: str, datalog: str = "") -> common_pb2.TrialParams:
    params = common_pb2.TrialParams(
        environment=common_pb2.EnvironmentParams(endpoint=env),
        actors=[common_pb2.ActorParams(name=f"a{i}", actor_class="player", endpoint=e) for i, e in enumerate(actors)],
    )
    if datalog:
        params.datalog.endpoint = datalog
    return params


def test_the_default_policy_refuses_local_endpoints_only() -> None:
    policy = EndpointPolicy()
    assert not policy.restricts
    assert policy.allows("grpc://anywhere.example:1") and policy.allows("unix:///tmp/x.sock")
    assert not policy.allows("local://CartPole-v1")
    assert EndpointPolicy(allow_local=True).allows("local://CartPole-v1")
    with pytest.raises(EndpointRefusedError, match=r"the actor 'a0' endpoint 'local://p' is refused: local:// endpoints"):
        policy.check(_params("grpc://127.0.0.1:1", "local://p"), trial_id="t")


def test_exact_endpoints_patterns_and_host_patterns() -> None:
    policy = EndpointPolicy(allowed=(
        "grpc://10.0.0.5:9001",          # exact
        "grpc://*.cluster.local:*",      # host pattern, any port
        "grpc://192.168.1.?:90",         # one character
        "envs.example.org",              # a host alone: any port
        "unix:///run/cogment/*",         # a socket directory
    ))
    allowed = ["grpc://10.0.0.5:9001", "grpc://env-3.cluster.local:40000", "grpc://ENV.Cluster.Local:1",
               "grpc://192.168.1.7:90", "grpc://envs.example.org:1234", "unix:///run/cogment/env.sock",
               "unix:/run/cogment/a/b.sock"]
    refused = ["grpc://10.0.0.5:9002", "grpc://10.0.0.6:9001", "grpc://cluster.local:1", "grpc://192.168.1.17:90",
               "grpc://x.envs.example.org:1", "unix:///run/other/env.sock", "unix:///run/cogment/../../etc/x.sock",
               "grpc://env.cluster.local:1@elsewhere.example:9001", "local://x"]
    assert [e for e in allowed if not policy.allows(e)] == []
    assert [e for e in refused if policy.allows(e)] == []


def test_bad_allow_list_entries_are_refused_when_the_policy_is_made() -> None:
    for entry, match in (("grpc://host", "expected 'grpc://HOST:PORT'"), ("grpc://host:port", "expected 'grpc://HOST:PORT'"),
                         ("unix:relative.sock", "must be absolute"), ("http://x:1", "expected grpc://"),
                         ("local://x", "expected grpc://"), ("bad host", "is not a host"), ("", "non-empty")):
        with pytest.raises(ValueError, match=match):
            EndpointPolicy(allowed=(entry,))
    with pytest.raises(TypeError, match="not one str"):
        EndpointPolicy(allowed="grpc://10.0.0.5:9001")  # type: ignore[arg-type]


def test_check_names_the_component_and_lets_trusted_endpoints_through() -> None:
    policy = EndpointPolicy(allowed=("grpc://127.0.0.1:*",))
    policy.check(_params("grpc://127.0.0.1:1", "cogment://client", "grpc://127.0.0.1:2"), trial_id="t")
    with pytest.raises(EndpointRefusedError) as caught:
        policy.check(_params("grpc://127.0.0.1:1", "grpc://127.0.0.1:2", datalog="grpc://10.1.1.1:9003"), trial_id="t1")
    assert isinstance(caught.value, TrialStartError)
    assert str(caught.value) == ("trial 't1' cannot start: the datalog endpoint 'grpc://10.1.1.1:9003' is refused: it matches "
                                 "none of the allowed endpoints ['grpc://127.0.0.1:*']")
    policy.check(_params("grpc://127.0.0.1:1", datalog="grpc://10.1.1.1:9003"), trial_id="t", trusted=["grpc://10.1.1.1:9003"])


def test_trial_endpoints_lists_what_the_orchestrator_dials() -> None:
    params = _params("grpc://e:1", "cogment://client", "client", "grpc://a:2", datalog="unix:///d.sock")
    assert trial_endpoints(params) == [("environment", "grpc://e:1"), ("actor 'a2'", "grpc://a:2"), ("datalog", "unix:///d.sock")]
