"""The ambassador's HAProxy for real, with the config the program renders, in front of stand-in upstreams.

Stand-ins (small HTTP servers on 127.0.0.1) make each failure exact: one that sleeps past the response
timeout, one that fails every request, one that drops the connection after reading the request. The same
proxy in front of real Langflow processes is tests/langflow/test_ambassador_real.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from components.ambassador import spec
from settings.ambassador import AmbassadorConfig
from tests.stand_ins import StandInServer
from verify.ambassador import HAProxyProcess, HAProxyUnavailable, haproxy_binary, local_config

KEY = "sk-test-key-0123456789"
CONNECT, RESPONSE, RATE = 1, 2, 20


class StandIn(StandInServer):
    """An upstream that records what reached it; `mode` says how it answers runs."""

    def __init__(self, mode: str = "ok"):
        self.mode, self.seen = mode, []
        super().__init__(self._answer)

    def _answer(self, method: str, path: str, headers: dict[str, str]):
        if path == "/health_check":
            return (500, {"status": "down"}) if self.mode == "failing" else (200, {"status": "ok"})
        self.seen.append({"path": path, **headers})
        if self.mode == "slow":
            time.sleep(RESPONSE + 2)
        if self.mode == "drop":
            return None  # reads the request, then closes the connection without an answer
        return (500 if self.mode == "failing" else 200), {"served_by": self.port}

    def runs(self) -> list[dict[str, Any]]:
        return [s for s in self.seen if s["path"].startswith("/api/")]


def rendered(**ambassador: Any) -> str:
    config = AmbassadorConfig(enabled=True, timeouts={"connect_seconds": CONNECT, "response_seconds": RESPONSE},
                              outlier_ejection={"consecutive_errors": 3, "check_interval_seconds": 1},
                              rate_limit_per_client=RATE, **ambassador)
    return spec.haproxy_config(config, metrics=True, bind=spec.shared_bind(),
                               langflow_host="langflow-pods.langflow.svc.cluster.local", langflow_port=7860,
                               langflow_slots=4)


@pytest.fixture(scope="module", autouse=True)
def _haproxy() -> None:
    try:
        haproxy_binary()
    except HAProxyUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator:
    started: list[Any] = []

    def start(*stand_ins: StandIn, **ambassador: Any) -> HAProxyProcess:
        process = HAProxyProcess(rendered(**ambassador), [("127.0.0.1", s.port) for s in stand_ins], tmp_path, KEY)
        started.append(process)
        process.start()
        return process
    yield start
    for process in started:
        process.stop()


@pytest.fixture
def stand_ins() -> Iterator:
    made: list[StandIn] = []

    def make(mode: str = "ok") -> StandIn:
        made.append(StandIn(mode))
        return made[-1]
    yield make
    for stand_in in made:
        stand_in.close()


def run(process: HAProxyProcess, flow: str = "echo", headers: dict[str, str] | None = None, timeout: float = 30):
    return process.request(f"/api/v1/run/{flow}", "POST", b'{"input_value": "hi"}',
                           {"Content-Type": "application/json", **(headers or {})}, timeout=timeout)


def test_only_the_addresses_change_when_the_config_runs_here():
    original = rendered()
    local = local_config(original, [("127.0.0.1", 1), ("127.0.0.1", 2)], 3, 4)
    removed = set(original.splitlines()) - set(local.splitlines())
    assert "    bind 127.0.0.1:3" in local and "    bind 127.0.0.1:4" in local
    assert {line.split()[0] for line in removed} == {"bind", "server-template", "resolvers", "parse-resolv-conf",
                                                     "hold", "accepted_payload_size"}
    assert "    server langflow2 127.0.0.1:2 check inter 1s fall 2 rise 2 observe layer7 error-limit 3 " \
           "on-error mark-down" in local


def test_the_key_and_a_request_id_are_added_and_logged(proxy, stand_ins):
    upstream = stand_ins()
    process = proxy(upstream)
    status, body, headers = run(process, headers={"x-api-key": "the client's own"})
    assert status == 200 and body == {"served_by": upstream.port}
    (seen,) = upstream.runs()
    assert seen["x-api-key"] == KEY  # the ambassador's key; the client's is dropped
    generated = headers["x-request-id"]
    assert seen["x-request-id"] == generated and len(generated) == 36
    # A client's own id is kept; one that could break a log line is replaced.
    assert run(process, headers={"X-Request-ID": "job-42.step:1"})[2]["x-request-id"] == "job-42.step:1"
    assert upstream.runs()[-1]["x-request-id"] == "job-42.step:1"
    assert run(process, headers={"X-Request-ID": 'x", "status": 200'})[2]["x-request-id"] != 'x", "status": 200'
    # HAProxy writes its log after the answer: on a busy machine, a moment later.
    deadline = time.monotonic() + 10
    while len(entries := [e for e in process.access_log() if e["path"].startswith("/api/")]) < 3 \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    first = entries[0]
    assert first["request_id"] == generated and first["flow"] == "echo" and first["status"] == 200
    assert isinstance(first["duration_ms"], int) and first["upstream"] == "langflow1"
    assert entries[1]["request_id"] == "job-42.step:1"


def test_other_paths_are_refused_and_the_health_endpoint_is_its_own(proxy, stand_ins):
    upstream = stand_ins()
    process = proxy(upstream)
    status, body, headers = process.request("/api/v1/users/whoami")
    assert status == 403 and body["status"] == 403 and body["request_id"] == headers["x-request-id"]
    assert process.request("/api/v1/auto_login")[0] == 403
    assert upstream.runs() == []
    for port in (process.api_port, process.admin_port):  # the clients' own, and the probes'
        assert process.request("/healthz", port=port)[0] == 200
    upstream.close()
    assert process.request("/healthz", port=process.admin_port)[0] == 200  # alive without Langflow
    assert process.request("/api/v1/run/echo", port=process.admin_port)[0] == 404


def test_no_langflow_answers_a_json_503_within_the_connect_timeout(proxy, stand_ins):
    upstream = stand_ins()
    process = proxy(upstream)
    upstream.close()
    for _ in range(3):
        started = time.monotonic()
        status, body, headers = run(process, timeout=30)
        elapsed = time.monotonic() - started
        assert status == 503 and body["error"].startswith("Langflow is unavailable"), body
        assert body["request_id"] == headers["x-request-id"] and headers["content-type"] == "application/json"
        # Each connection attempt is refused at once; a retry never waits past the connect timeout.
        assert elapsed < CONNECT * 3 + 1, elapsed


def test_a_slow_langflow_answers_a_json_504_at_the_response_timeout(proxy, stand_ins):
    upstream = stand_ins("slow")
    process = proxy(upstream)
    started = time.monotonic()
    status, body, headers = run(process, timeout=30)
    elapsed = time.monotonic() - started
    assert status == 504 and body["error"] == f"Langflow did not answer within {RESPONSE} s"
    assert body["request_id"] == headers["x-request-id"]
    assert RESPONSE - 0.2 <= elapsed < RESPONSE + 1.5, elapsed
    assert len(upstream.runs()) == 1  # a request that reached Langflow is never sent again


def test_a_request_that_reached_langflow_is_never_retried(proxy, stand_ins):
    upstream = stand_ins("drop")
    process = proxy(upstream)
    status, body, _ = run(process)
    assert status == 502 and body["status"] == 502
    assert len(upstream.runs()) == 1


def test_a_refused_connection_is_retried_on_another_pod(proxy, stand_ins):
    live = stand_ins()
    down = stand_ins()
    process = proxy(down, live)
    down.close()
    # With leastconn both are tried in turn: every request still reaches the live one.
    answers = [run(process)[0] for _ in range(6)]
    assert answers == [200] * 6
    assert len(live.runs()) == 6


def test_a_pod_taken_out_of_rotation_gets_no_new_request(proxy, stand_ins):
    """The harness's stand-in for the cluster DNS dropping a stopping pod (tests/langflow use it)."""
    kept, leaving = stand_ins(), stand_ins()
    process = proxy(kept, leaving)
    process.take_out_of_rotation(2)
    assert [run(process)[0] for _ in range(6)] == [200] * 6
    assert len(kept.runs()) == 6 and not leaving.runs()


def test_a_failing_pod_is_ejected_and_the_other_serves(proxy, stand_ins):
    failing, healthy = stand_ins("failing"), stand_ins()
    process = proxy(failing, healthy)
    statuses = [run(process)[0] for _ in range(20)]
    # Its errors count against it until it is taken out: after that, only the healthy pod answers.
    assert len(failing.runs()) <= 3 + 1, len(failing.runs())
    assert statuses[-10:] == [200] * 10


def test_a_client_above_its_rate_gets_a_json_429(proxy, stand_ins):
    upstream = stand_ins()
    process = proxy(upstream)
    statuses = [run(process)[0] for _ in range(RATE + 10)]
    assert statuses[:RATE] == [200] * RATE and 429 in statuses
    status, body, headers = run(process)
    assert status == 429 and body["request_id"] == headers["x-request-id"]


def test_the_metrics_show_the_requests_just_made(proxy, stand_ins):
    upstream = stand_ins()
    process = proxy(upstream)
    assert [run(process)[0] for _ in range(3)] == [200] * 3
    status, text, _ = process.request("/metrics", port=process.admin_port)
    assert status == 200
    line = next(l for l in text.splitlines()
                if l.startswith('haproxy_backend_http_responses_total{proxy="langflow",code="2xx"}'))
    assert float(line.split()[-1]) == 3, line
    assert 'haproxy_server_status{proxy="langflow",server="langflow1",state="UP"} 1' in text, \
        [l for l in text.splitlines() if l.startswith("haproxy_server_status")]
    # Never on the port clients use.
    assert process.request("/metrics")[0] == 403


def raw_request(process: HAProxyProcess, target: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request with `target` sent byte for byte (an HTTP library would normalise or refuse some)."""
    import json
    import socket

    lines = [f"POST {target} HTTP/1.1", "Host: langflow", "Content-Type: application/json", "Content-Length: 2",
             "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    with socket.create_connection(("127.0.0.1", process.api_port), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n{}").encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def test_a_credential_in_the_query_is_refused_and_others_never_reach_langflow(proxy, stand_ins):
    """Langflow prefers ?x-api-key= to the header the ambassador sets (both releases): the client's own
    credentials must never reach it, however the query spells them."""
    from urllib.parse import parse_qsl

    upstream = stand_ins()
    process = proxy(upstream)
    refused = ["x-api-key=client", "stream=false&x-api-key=client", "X-API-KEY=client", "x%2Dapi%2dkey=client",
               "%78-api-key=client", "%58%2D%41PI-%4bey=client", "a=1&x-api-key", "x-api-key=&stream=true",
               "api_key=client", "token=eyJ.client.jwt", "Api_Key=client"]
    for query in refused:
        # Each one names a credential parameter once decoded as Langflow (Starlette's parse_qsl) decodes it.
        assert {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)} & {"x-api-key", "api_key",
                                                                                            "token"}, query
        status, body = raw_request(process, f"/api/v1/run/echo?{query}")
        assert status == 400 and "no credential in the query string" in body["error"], (query, status, body)
    assert upstream.runs() == []
    for query in ("stream=false", "my-x-api-key=1", "x-api-keys=1", "tokens=2&note=x-api-key"):
        assert raw_request(process, f"/api/v1/run/echo?{query}")[0] == 200, query
    # Every header Langflow reads a credential from is dropped; the ambassador's key is the only one left.
    status, _ = raw_request(process, "/api/v1/run/echo", {
        "x-api-key": "client", "X-Api-Key": "client2", "api_key": "client3", "Authorization": "Bearer client.jwt",
        "Cookie": "access_token_lf=client.jwt; refresh_token_lf=r"})
    assert status == 200
    seen = upstream.runs()[-1]
    assert seen["x-api-key"] == KEY and not {"authorization", "cookie", "api_key"} & set(seen), seen


PLAIN_PATHS = ["/api/v1/run/echo", "/api/v1/run/my.flow..v2", "/api/v1/run/.hidden", "/api/v1/run/a-b_c~1"]
TRAVERSALS = [
    "/api/v1/run/../users/whoami", "/api/v1/run/..", "/api/v1/run/./echo", "/api/v1/run/.",
    "/api/v1/run/%2e%2e/users/whoami", "/api/v1/run/%2E%2e/users/whoami", "/api/v1/run/.%2e/users/whoami",
    "/api/v1/run/..%2fusers%2fwhoami", "/api/v1/run/..%2Fusers/whoami", "/api/v1/run/echo%2f..%2f..%2fusers",
    "/api/v1/run/..\\users\\whoami", "/api/v1/run/%5c..%5cusers", "/api/v1/run//../users/whoami",
    "/api/v1/run/;/../users", "/api/v1/run/echo;x=1", "/api/v1/run/%252e%252e/users", "/api/v1/run/echo%00",
]


def test_a_path_that_could_mean_another_is_refused_before_langflow(proxy, stand_ins):
    """HAProxy checks the allowed prefix on the raw path; Langflow decodes it. Such a path never reaches
    Langflow (with the superuser's key), whatever the prefix check would have said."""
    upstream = stand_ins()
    process = proxy(upstream)
    for path in TRAVERSALS:
        status, body = raw_request(process, path)
        assert status == 400 and "not in plain form" in body["error"], (path, status, body)
    assert upstream.seen == []  # nothing but health checks reached it
    time.sleep(1.1)  # past the rate limit's one-second window
    for path in PLAIN_PATHS:
        assert raw_request(process, path)[0] == 200, path
    assert [s["path"] for s in upstream.runs()] == PLAIN_PATHS
