"""std/http_request against a real local HTTP server (the `upstream` fixture)."""

import asyncio
import base64
import email.utils
import gzip
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from conv3n.blocks.std import http_request
from conv3n.engine import Engine
from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, ExecutionRecord
from conv3n.testing import run_block, run_workflow
from tests.blocks.conftest import RetryJournal, StepClock
from tests.conftest import Recorded, Upstream, free_port

RETRY3 = {"max_attempts": 3, "backoff_ms": 1}


def _header(request: Recorded, name: str) -> str | None:
    """A header the server received, looked up case-insensitively."""
    matches = [v for k, v in request.headers.items() if k.lower() == name.lower()]
    return matches[-1] if matches else None


def _answers(*answers: tuple[int, dict[str, str], bytes]) -> Any:
    """A route handler giving these answers in turn, then the last one again."""
    queue = list(answers)

    def handler(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


async def _run_one(config: dict[str, JSON], **node: Any) -> ExecutionRecord:
    """Run a workflow of one http_request node `call` (engine options passed through)."""
    options = {k: node.pop(k) for k in ("journal", "clock", "engine", "secrets") if k in node}
    document = {"nodes": [{"id": "call", "type": "std/http_request", "config": config, **node}]}
    return await run_workflow(document, **options)


@pytest.fixture
def release(upstream: Upstream) -> Iterator[threading.Event]:
    """An event slow routes wait on; set at teardown so no server thread is left hanging."""
    event = threading.Event()
    yield event
    event.set()


# --- requests --------------------------------------------------------------------------------


async def test_get_sends_query_with_list_values_repeating_the_key(upstream: Upstream):
    upstream.route("/search", body={"ok": True})
    query = {"q": "a b&c", "tag": ["x", "y"], "n": 3, "flag": True, "none": None}
    result = await run_block("std/http_request", {"url": upstream.url("/search"), "query": query})
    assert result.status == "success", result.error
    [request] = upstream.requests
    assert request.method == "GET"
    assert parse_qsl(urlsplit(request.path).query, keep_blank_values=True) == [
        ("q", "a b&c"),
        ("tag", "x"),
        ("tag", "y"),
        ("n", "3"),
        ("flag", "true"),
        ("none", ""),
    ]


async def test_query_is_added_to_the_urls_own_query_string(upstream: Upstream):
    upstream.route("/orders", body=[])
    url = upstream.url("/orders?since=2024-01-01&page=2")
    result = await run_block("std/http_request", {"url": url, "query": {"limit": 10}})
    assert result.status == "success", result.error
    query = parse_qsl(urlsplit(upstream.requests[0].path).query)
    assert query == [("since", "2024-01-01"), ("page", "2"), ("limit", "10")]


async def test_url_query_string_is_kept_without_query_config(upstream: Upstream):
    upstream.route("/orders", body=[])
    url = upstream.url("/orders?since={{ $input.since }}")
    result = await run_block("std/http_request", {"url": url}, input={"since": "2024-05-01"})
    assert result.status == "success", result.error
    assert upstream.requests[0].path == "/orders?since=2024-05-01"


async def test_post_json_body_arrives_as_json(upstream: Upstream):
    upstream.route("/items", status=201, body={"id": 1})
    body = {"name": "Ada", "tags": [1, 2.5, None, True], "nested": {"k": "ü"}}
    config = {"method": "POST", "url": upstream.url("/items"), "body": body}
    result = await run_block("std/http_request", config)
    assert result.status == "success", result.error
    assert result.data["status"] == 201
    [request] = upstream.requests
    assert request.method == "POST"
    assert _header(request, "content-type") == "application/json"
    assert json.loads(request.body) == body


async def test_post_form_body_is_url_encoded_with_lists_repeating_the_key(upstream: Upstream):
    upstream.route("/form", body={})
    body = {"name": "Ada Lovelace", "tags": ["a", "b"], "age": 36, "ok": False}
    config = {"method": "POST", "url": upstream.url("/form"), "body": body, "body_type": "form"}
    result = await run_block("std/http_request", config)
    assert result.status == "success", result.error
    [request] = upstream.requests
    assert _header(request, "content-type") == "application/x-www-form-urlencoded"
    assert parse_qsl(request.body.decode()) == [
        ("name", "Ada Lovelace"),
        ("tags", "a"),
        ("tags", "b"),
        ("age", "36"),
        ("ok", "false"),
    ]


async def test_form_body_that_is_not_an_object_is_a_workflow_error_naming_config_body():
    config = {"method": "POST", "url": "http://x.test/", "body": [1], "body_type": "form"}
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/http_request", config)
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.body"]


async def test_form_body_rendered_as_a_list_fails_without_sending(upstream: Upstream):
    config = {"method": "POST", "url": upstream.url("/f"), "body": "{{ [1] }}", "body_type": "form"}
    result = await run_block("std/http_request", config, retry=RETRY3)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "config_invalid"
    assert [p["path"] for p in result.error.details["problems"]] == ["config.body"]
    assert result.attempts == 1
    assert upstream.requests == []


async def test_post_text_body_is_sent_as_is(upstream: Upstream):
    upstream.route("/text", body="ok")
    body = "line one\nline two ü"
    config = {"method": "PUT", "url": upstream.url("/text"), "body": body, "body_type": "text"}
    result = await run_block("std/http_request", config)
    assert result.status == "success", result.error
    [request] = upstream.requests
    assert request.method == "PUT"
    assert request.body == body.encode()
    assert _header(request, "content-type") == "text/plain; charset=utf-8"


async def test_get_sends_no_body(upstream: Upstream):
    upstream.route("/get", body={})
    result = await run_block("std/http_request", {"url": upstream.url("/get"), "body": {"a": 1}})
    assert result.status == "success", result.error
    assert upstream.requests[0].body == b""


async def test_headers_are_sent(upstream: Upstream):
    upstream.route("/h", body={})
    headers = {"X-Trace": "abc-123", "Accept": "application/json", "X-Name": "Zoë"}
    result = await run_block("std/http_request", {"url": upstream.url("/h"), "headers": headers})
    assert result.status == "success", result.error
    [request] = upstream.requests
    assert _header(request, "x-trace") == "abc-123"
    assert _header(request, "accept") == "application/json"
    # http.server decodes header bytes as Latin-1; the block sent the value as UTF-8.
    assert (_header(request, "x-name") or "").encode("latin-1").decode() == "Zoë"


async def test_header_values_rendered_as_numbers_are_sent_as_text(upstream: Upstream):
    upstream.route("/h", body={})
    headers = {"X-Count": "{{ len($input) }}", "X-Ratio": 0.5}
    result = await run_block(
        "std/http_request", {"url": upstream.url("/h"), "headers": headers}, input=[1, 2]
    )
    assert result.status == "success", result.error
    assert _header(upstream.requests[0], "x-count") == "2"
    assert _header(upstream.requests[0], "x-ratio") == "0.5"


async def test_users_content_type_in_any_case_replaces_the_default_once(upstream: Upstream):
    upstream.route("/h", body={})
    config = {
        "method": "POST",
        "url": upstream.url("/h"),
        "headers": {"content-type": "application/vnd.api+json"},
        "body": {"a": 1},
    }
    record = await _run_one(config)
    assert record.status == "success", record.error
    sent = [v for k, v in upstream.requests[0].header_pairs if k.lower() == "content-type"]
    assert sent == ["application/vnd.api+json"]


async def test_header_with_a_line_break_is_a_config_error_naming_the_header(upstream: Upstream):
    config = {"url": upstream.url("/h"), "headers": {"X-Evil": "a\r\nInjected: yes"}}
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/http_request", config)
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.headers.X-Evil"]


async def test_credential_is_sent_as_a_bearer_token(upstream: Upstream):
    upstream.route("/me", body={})
    config = {"url": upstream.url("/me"), "credential": "token"}
    result = await run_block("std/http_request", config, secrets={"token": "abc"})
    assert result.status == "success", result.error
    assert _header(upstream.requests[0], "authorization") == "Bearer abc"


async def test_credential_with_a_scheme_is_sent_as_the_whole_header(upstream: Upstream):
    upstream.route("/me", body={})
    config = {"url": upstream.url("/me"), "credential": "basic", "headers": {"authorization": "x"}}
    result = await run_block("std/http_request", config, secrets={"basic": "Basic dTpw"})
    assert result.status == "success", result.error
    assert [v for k, v in upstream.requests[0].headers.items() if k.lower() == "authorization"] == [
        "Basic dTpw"
    ]


async def test_missing_credential_fails_without_sending(upstream: Upstream):
    config = {"url": upstream.url("/me"), "credential": "nope"}
    result = await run_block("std/http_request", config, retry=RETRY3)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "secret_not_found"
    assert "nope" in result.error.message
    assert result.attempts == 1
    assert upstream.requests == []


async def test_idempotency_header_carries_the_same_key_on_every_attempt(upstream: Upstream):
    upstream.routes["/pay"] = _answers((503, {}, b"busy"), (200, {}, b"done"))
    config = {
        "method": "POST",
        "url": upstream.url("/pay"),
        "idempotency_header": "Idempotency-Key",
    }
    record = await _run_one(config, retry=RETRY3, clock=StepClock())
    assert record.status == "success", record.error
    keys = [_header(r, "idempotency-key") for r in upstream.requests]
    assert keys == [f"{record.execution_id}:call"] * 2


# --- responses -------------------------------------------------------------------------------


async def test_json_response_is_parsed(upstream: Upstream):
    upstream.route("/j", body={"items": [1, 2], "ok": True}, headers={"X-Rate": "5"})
    result = await run_block("std/http_request", {"url": upstream.url("/j")})
    assert result.status == "success", result.error
    assert result.data["status"] == 200
    assert result.data["body"] == {"items": [1, 2], "ok": True}
    assert result.data["headers"]["content-type"] == "application/json"
    assert result.data["headers"]["x-rate"] == "5"


async def test_vendor_json_type_is_parsed(upstream: Upstream):
    problem = b'{"title": "nope"}'
    upstream.routes["/p"] = lambda _r: (200, {"Content-Type": "application/problem+json"}, problem)
    result = await run_block("std/http_request", {"url": upstream.url("/p")})
    assert result.data["body"] == {"title": "nope"}


async def test_text_response_is_a_string(upstream: Upstream):
    upstream.route("/t", body="héllo")
    result = await run_block("std/http_request", {"url": upstream.url("/t")})
    assert result.data["body"] == "héllo"


async def test_text_response_is_decoded_with_its_charset(upstream: Upstream):
    payload = "café".encode("latin-1")
    upstream.routes["/t"] = lambda _r: (
        200,
        {"Content-Type": "text/plain; charset=latin-1"},
        payload,
    )
    result = await run_block("std/http_request", {"url": upstream.url("/t")})
    assert result.data["body"] == "café"


async def test_binary_response_is_base64(upstream: Upstream):
    payload = bytes(range(256))
    upstream.route("/b", body=payload)
    result = await run_block("std/http_request", {"url": upstream.url("/b")})
    assert result.status == "success", result.error
    assert result.data["body"] == {"base64": base64.b64encode(payload).decode()}


async def test_binary_response_that_happens_to_be_valid_utf8_is_still_base64(upstream: Upstream):
    upstream.routes["/png"] = lambda _r: (200, {"Content-Type": "image/png"}, b"PNG\x00\x01")
    result = await run_block("std/http_request", {"url": upstream.url("/png")})
    assert result.data["body"] == {"base64": base64.b64encode(b"PNG\x00\x01").decode()}


async def test_malformed_json_response_is_kept_as_text(upstream: Upstream):
    upstream.routes["/bad"] = lambda _r: (200, {"Content-Type": "application/json"}, b"{oops")
    result = await run_block("std/http_request", {"url": upstream.url("/bad")})
    assert result.status == "success", result.error
    assert result.data["body"] == "{oops"


async def test_json_response_with_nan_is_kept_as_text(upstream: Upstream):
    payload = b'{"x": NaN}'
    upstream.routes["/nan"] = lambda _r: (200, {"Content-Type": "application/json"}, payload)
    result = await run_block("std/http_request", {"url": upstream.url("/nan")})
    assert result.status == "success", result.error
    assert result.data["body"] == '{"x": NaN}'


async def test_empty_response_body_is_null(upstream: Upstream):
    upstream.routes["/e"] = lambda _r: (204, {}, b"")
    result = await run_block("std/http_request", {"url": upstream.url("/e"), "method": "DELETE"})
    assert result.data == {"status": 204, "headers": result.data["headers"], "body": None}


async def test_head_response_has_no_body(upstream: Upstream):
    upstream.route("/h", body={"a": 1})
    result = await run_block("std/http_request", {"url": upstream.url("/h"), "method": "HEAD"})
    assert result.status == "success", result.error
    assert result.data["body"] is None
    assert upstream.requests[0].method == "HEAD"


# --- failures and retries ---------------------------------------------------------------------


async def test_error_status_fails_the_node_with_status_and_body(upstream: Upstream):
    upstream.route("/missing", status=404, body={"error": "no such order"})
    result = await run_block("std/http_request", {"url": upstream.url("/missing")})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"
    assert "404" in result.error.message
    assert result.error.details == {"status": 404, "body": {"error": "no such order"}}


async def test_error_status_with_fail_on_status_false_is_data(upstream: Upstream):
    upstream.route("/missing", status=404, body={"error": "no such order"})
    config = {"url": upstream.url("/missing"), "fail_on_status": False}
    result = await run_block("std/http_request", config, retry=RETRY3)
    assert result.status == "success", result.error
    assert result.data["status"] == 404
    assert result.data["body"] == {"error": "no such order"}
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_error_is_not_retried(upstream: Upstream, status: int):
    upstream.route("/x", status=status, body={})
    result = await run_block("std/http_request", {"url": upstream.url("/x")}, retry=RETRY3)
    assert result.status == "error"
    assert result.attempts == 1
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
async def test_server_error_is_retried_up_to_max_attempts(upstream: Upstream, status: int):
    upstream.route("/x", status=status, body={})
    result = await run_block("std/http_request", {"url": upstream.url("/x")}, retry=RETRY3)
    assert result.status == "error"
    assert result.attempts == 3
    assert len(upstream.requests) == 3


async def test_server_error_then_success_succeeds_on_retry(upstream: Upstream):
    upstream.routes["/x"] = _answers(
        (502, {}, b""), (200, {"Content-Type": "application/json"}, b"1")
    )
    result = await run_block("std/http_request", {"url": upstream.url("/x")}, retry=RETRY3)
    assert result.status == "success", result.error
    assert result.attempts == 2
    assert result.data["body"] == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_sets_the_retry_delay(
    upstream: Upstream, journal: RetryJournal, clock: StepClock, status: int
):
    upstream.routes["/x"] = _answers((status, {"Retry-After": "2"}, b""), (200, {}, b"ok"))
    record = await _run_one({"url": upstream.url("/x")}, retry=RETRY3, journal=journal, clock=clock)
    assert record.status == "success", record.error
    assert [f.retry_in_s for f in journal.failed] == [2.0]
    assert clock.slept == [2.0]


async def test_retry_after_http_date_is_measured_on_the_engine_clock(
    upstream: Upstream, journal: RetryJournal, clock: StepClock
):
    when = email.utils.format_datetime(clock.now() + timedelta(seconds=3), usegmt=True)
    upstream.routes["/x"] = _answers((503, {"Retry-After": when}, b""), (200, {}, b"ok"))
    record = await _run_one({"url": upstream.url("/x")}, retry=RETRY3, journal=journal, clock=clock)
    assert record.status == "success", record.error
    assert [f.retry_in_s for f in journal.failed] == [3.0]


async def test_unparseable_retry_after_falls_back_to_backoff(
    upstream: Upstream, journal: RetryJournal, clock: StepClock
):
    upstream.routes["/x"] = _answers((429, {"Retry-After": "soon"}, b""), (200, {}, b"ok"))
    retry = {"max_attempts": 2, "backoff_ms": 250, "jitter": 0}
    record = await _run_one({"url": upstream.url("/x")}, retry=retry, journal=journal, clock=clock)
    assert record.status == "success", record.error
    assert [f.retry_in_s for f in journal.failed] == [0.25]


async def test_timeout_fails_the_attempt_as_retryable(upstream: Upstream, release: threading.Event):
    def slow(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        release.wait(30)
        return 200, {}, b"late"

    upstream.routes["/slow"] = slow
    config = {"url": upstream.url("/slow"), "timeout_ms": 50}
    result = await run_block("std/http_request", config, retry={"max_attempts": 2, "backoff_ms": 1})
    assert result.status == "error"
    assert result.error is not None
    assert "timed out after 50 ms" in result.error.message
    assert result.attempts == 2
    assert len(upstream.requests) == 2


async def test_node_timeout_bounds_a_slow_request(upstream: Upstream, release: threading.Event):
    def slow(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        release.wait(30)
        return 200, {}, b"late"

    upstream.routes["/slow"] = slow
    result = await run_block("std/http_request", {"url": upstream.url("/slow")}, timeout_ms=50)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "timeout"


async def test_connection_refused_is_a_retryable_error():
    url = f"http://127.0.0.1:{free_port()}/nobody"
    result = await run_block(
        "std/http_request", {"url": url}, retry={"max_attempts": 2, "backoff_ms": 1}
    )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"
    assert result.error.details["kind"] == "connect"
    assert result.attempts == 2


async def test_response_over_max_response_bytes_fails_without_retry(upstream: Upstream):
    upstream.route("/big", body="x" * 2000)
    config = {"url": upstream.url("/big"), "max_response_bytes": 1000}
    result = await run_block("std/http_request", config, retry=RETRY3)
    assert result.status == "error"
    assert result.error is not None
    assert "1,000 byte limit" in result.error.message
    assert result.attempts == 1


async def test_streamed_response_over_max_response_bytes_fails():
    """A chunked answer with no Content-Length is cut off at the limit, while it streams."""
    sent: list[int] = []
    done = asyncio.Event()
    chunk = b"x" * 10_000

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(10_000):  # 100 MB if nobody stops reading
                writer.write(b"2710\r\n" + chunk + b"\r\n")
                await writer.drain()
                sent.append(len(chunk))
        except ConnectionError:
            pass
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = {"url": f"http://127.0.0.1:{port}/stream", "max_response_bytes": 1000}
    async with server:
        record = await _run_one(config)
        await asyncio.wait_for(done.wait(), 30)
    assert record.status == "error"
    assert record.error is not None
    assert "over the 1,000 byte limit" in record.error.message
    assert sum(sent) < 100_000_000  # the client hung up instead of reading it all


async def test_malformed_url_is_a_workflow_error_naming_config_url():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/http_request", {"url": "not a url"})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.url"]


async def test_url_rendered_malformed_is_a_config_error_naming_config_url():
    config = {"url": "{{ $input.url }}"}
    result = await run_block("std/http_request", config, input={"url": "ftp:/x"}, retry=RETRY3)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "config_invalid"
    assert [p["path"] for p in result.error.details["problems"]] == ["config.url"]
    assert result.attempts == 1


# --- hostile inputs -----------------------------------------------------------------------------


async def test_huge_request_header_fails_cleanly_with_the_servers_status(upstream: Upstream):
    upstream.route("/h", body={})
    config = {"url": upstream.url("/h"), "headers": {"X-Huge": "x" * 100_000}}
    result = await run_block("std/http_request", config)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.details["status"] == 431


async def test_huge_response_header_is_a_block_error_not_a_crash(upstream: Upstream):
    upstream.routes["/h"] = lambda _r: (200, {"X-Huge": "x" * 1_000_000}, b"{}")
    result = await run_block("std/http_request", {"url": upstream.url("/h")})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"


async def test_response_header_of_twenty_kilobytes_is_read(upstream: Upstream):
    """Over aiohttp's default line limit of 8 KiB, under the block's 64 KiB."""
    upstream.routes["/h"] = lambda _r: (200, {"X-Policy": "p" * 20_000}, b"")
    result = await run_block("std/http_request", {"url": upstream.url("/h")})
    assert result.status == "success", result.error
    assert len(result.data["headers"]["x-policy"]) == 20_000


async def test_ten_megabyte_request_body_arrives_whole(upstream: Upstream):
    upstream.route("/upload", body={"ok": True})
    body = "x" * (10 * 1024 * 1024)
    config = {"method": "POST", "url": upstream.url("/upload"), "body_type": "text"}
    result = await run_block("std/http_request", {**config, "body": "{{ $input }}"}, input=body)
    assert result.status == "success", result.error
    assert len(upstream.requests[0].body) == len(body)


async def test_ten_megabyte_response_body_is_read_whole(upstream: Upstream):
    upstream.route("/download", body="y" * (10 * 1024 * 1024))
    result = await run_block("std/http_request", {"url": upstream.url("/download")})
    assert result.status == "success", result.error
    assert len(result.data["body"]) == 10 * 1024 * 1024


# --- the shared pool ------------------------------------------------------------------------------


async def test_two_nodes_share_the_engines_client_and_connection(upstream: Upstream):
    handled_on: list[int] = []

    def answer(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        # ThreadingHTTPServer serves each connection on its own thread.
        handled_on.append(threading.get_ident())
        return 200, {"Content-Type": "application/json"}, b"{}"

    upstream.routes["/a"] = upstream.routes["/b"] = answer
    document = {
        "nodes": [
            {"id": "a", "type": "std/http_request", "config": {"url": upstream.url("/a")}},
            {"id": "b", "type": "std/http_request", "config": {"url": upstream.url("/b")}},
        ],
        "connections": [{"from": "a", "to": "b"}],
    }
    async with Engine() as engine:
        record = await run_workflow(document, engine=engine)
    assert record.status == "success", record.error
    assert [r.path for r in upstream.requests] == ["/a", "/b"]
    assert len(handled_on) == 2
    assert handled_on[0] == handled_on[1]


# --- what the client does for the caller ---------------------------------------------------------


async def test_redirect_is_followed_to_the_final_answer(upstream: Upstream):
    upstream.routes["/old"] = lambda _r: (302, {"Location": "/new"}, b"")
    upstream.route("/new", body={"moved": True})
    result = await run_block("std/http_request", {"url": upstream.url("/old")})
    assert result.status == "success", result.error
    assert result.data["status"] == 200
    assert result.data["body"] == {"moved": True}
    assert [r.path for r in upstream.requests] == ["/old", "/new"]


async def test_redirect_loop_fails_without_retry(upstream: Upstream):
    upstream.routes["/loop"] = lambda _r: (302, {"Location": "/loop"}, b"")
    result = await run_block("std/http_request", {"url": upstream.url("/loop")}, retry=RETRY3)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.details["kind"] == "too_many_redirects"
    assert result.attempts == 1


async def test_gzip_response_is_decoded(upstream: Upstream):
    packed = gzip.compress(json.dumps({"packed": "yes"}).encode())
    upstream.routes["/z"] = lambda _r: (
        200,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        packed,
    )
    result = await run_block("std/http_request", {"url": upstream.url("/z")})
    assert result.status == "success", result.error
    assert result.data["body"] == {"packed": "yes"}


async def test_corrupt_gzip_response_is_a_block_error(upstream: Upstream):
    upstream.routes["/z"] = lambda _r: (200, {"Content-Encoding": "gzip"}, b"not gzip at all")
    result = await run_block("std/http_request", {"url": upstream.url("/z")})
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "block_error"
    assert result.error.details["kind"] == "body"


async def test_repeated_response_headers_are_joined_under_a_lower_case_name(upstream: Upstream):
    def answer(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        return 200, {"X-Tag": "one", "x-tag": "two"}, b""

    upstream.routes["/h"] = answer
    result = await run_block("std/http_request", {"url": upstream.url("/h")})
    assert result.status == "success", result.error
    assert result.data["headers"]["x-tag"] == "one, two"


async def test_percent_encoded_path_is_sent_as_written(upstream: Upstream):
    upstream.route("/a%2Fb/c%20d", body={})
    result = await run_block("std/http_request", {"url": upstream.url("/a%2Fb/c%20d?q=%26x")})
    assert result.status == "success", result.error
    assert upstream.requests[0].path == "/a%2Fb/c%20d?q=%26x"


async def test_non_ascii_header_value_is_sent_as_utf8(upstream: Upstream):
    upstream.route("/h", body={})
    config = {"url": upstream.url("/h"), "headers": {"X-Name": "café"}}
    result = await run_block("std/http_request", config)
    assert result.status == "success", result.error
    # http.server decodes header bytes as latin-1: the UTF-8 bytes of "café" arrive.
    assert _header(upstream.requests[0], "x-name") == "café".encode().decode("latin-1")


async def test_connection_closed_mid_body_is_retryable():
    """The server promises 1,000 bytes, sends 10 and hangs up: another attempt may succeed."""
    answers = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answers
        answers += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await run_block(
            "std/http_request", {"url": f"http://127.0.0.1:{port}/cut"}, retry=RETRY3
        )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.details["kind"] == "body"
    assert result.attempts == 3
    assert answers == 3


async def test_many_concurrent_requests_share_the_pool(upstream: Upstream):
    upstream.route("/n", body={"ok": True})
    document = {
        "nodes": [
            {"id": f"n{i}", "type": "std/http_request", "config": {"url": upstream.url("/n")}}
            for i in range(40)
        ]
    }
    async with Engine() as engine:
        records = await asyncio.gather(*(run_workflow(document, engine=engine) for _ in range(5)))
    assert [r.status for r in records] == ["success"] * 5
    assert len(upstream.requests) == 200


async def test_http_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
):
    """The upstream plays an HTTP proxy: it sees the absolute URL in the request line."""
    upstream.routes["http://api.example.test/x"] = lambda _r: (200, {}, b"via proxy")
    upstream.route("/direct", body="direct")
    monkeypatch.setenv("HTTP_PROXY", upstream.url())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    http_request._env_proxies.cache_clear()
    try:
        proxied = await run_block("std/http_request", {"url": "http://api.example.test/x"})
        direct = await run_block("std/http_request", {"url": upstream.url("/direct")})
    finally:
        http_request._env_proxies.cache_clear()
    assert proxied.status == "success", proxied.error
    assert proxied.data["body"] == "via proxy"
    assert direct.status == "success", direct.error
    assert direct.data["body"] == "direct"
    assert [r.path for r in upstream.requests] == ["http://api.example.test/x", "/direct"]
