"""The HTTP listener, through real requests to its 127.0.0.1 port."""

from __future__ import annotations

import logging
import socket
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from syndicator import listener as listener_module
from syndicator.config import FeedSettings
from syndicator.listener import Listener, parse_address
from syndicator.metrics import Metrics
from tests.test_pings import BILLION_LAUGHS, WORDPRESS_EXTENDED_PING

SECRET = "correct horse battery staple"
FEEDS = (
    FeedSettings(name="news", url="https://blog.example.com/feed/"),
    FeedSettings(name="jobs", url="https://careers.example.org/jobs/feed"),
)
WORDPRESS = {  # the headers WP_HTTP_IXR_Client sends
    "Content-Type": "text/xml",
    "User-Agent": "The Incutio XML-RPC PHP Library -- WordPress/6.6.2",
}
WORDPRESS_PING = xmlrpc.client.dumps(
    ("Careers", "https://careers.example.org/"), "weblogUpdates.ping"
).encode()


class Polls:
    """Records on_poll calls; `wait()` blocks until `count` have arrived (or 1 s passed).

    The listener calls on_poll before it answers, so once a response is in, `names` is final.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, name: str) -> None:
        with self._changed:
            self.names.append(name)
            self._changed.notify_all()

    def wait(self, count: int = 1, timeout: float = 1.0) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.names) >= count, timeout=timeout)
            return list(self.names)


@pytest.fixture
def polls() -> Polls:
    return Polls()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def start(polls: Polls, metrics: Metrics) -> Iterator[Callable[..., str]]:
    """start(**overrides) → base URL of a running listener on an ephemeral port."""
    running: list[Listener] = []

    def start(**overrides: Any) -> str:
        options: dict[str, Any] = {
            "feeds": FEEDS,
            "secret": SECRET,
            "on_poll": polls,
            "health": lambda: (True, {"feeds": 2}),
            "queue_counts": lambda: {"mastodon": {"pending": 2}},
            "metrics": metrics,
            "debounce": 5.0,
        }
        options.update(overrides)
        server = Listener(options.pop("address", "127.0.0.1:0"), **options)
        server.start()
        running.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in running:
        server.stop()


def post_xml(url: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(url, data=body, headers={**WORDPRESS, **headers}, timeout=5)


# -- WordPress update pings -------------------------------------------------------------------


def test_wordpress_extended_ping_polls_the_matching_feed(
    start: Callable[..., str], polls: Polls
) -> None:
    response = post_xml(start() + "/", WORDPRESS_EXTENDED_PING)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    answer, _ = xmlrpc.client.loads(response.content)
    assert answer == ({"flerror": False, "message": "Thanks for the ping."},)
    assert polls.wait() == ["news"]


def test_wordpress_plain_ping_matches_by_blog_url(start: Callable[..., str], polls: Polls) -> None:
    assert post_xml(start() + "/xmlrpc", WORDPRESS_PING).status_code == 200
    assert polls.wait() == ["jobs"]


def test_python_xmlrpc_client_on_rpc2(start: Callable[..., str], polls: Polls) -> None:
    proxy = xmlrpc.client.ServerProxy(start() + "/RPC2")
    answer = proxy.weblogUpdates.extendedPing(
        "Careers",
        "https://careers.example.org/",
        "https://careers.example.org/jobs/",
        "https://careers.example.org/jobs/feed",
    )
    assert answer == {"flerror": False, "message": "Thanks for the ping."}
    assert polls.wait() == ["jobs"]


def test_unknown_blog_is_forbidden_and_polls_nothing(
    start: Callable[..., str], polls: Polls, metrics: Metrics
) -> None:
    body = xmlrpc.client.dumps(("Spam", "https://spam.example/"), "weblogUpdates.ping").encode()
    response = post_xml(start() + "/", body)
    assert response.status_code == 403
    assert polls.names == []
    assert (
        'syndicator_pings_total{result="refused",source="xmlrpc"} 1.0' in metrics.render().decode()
    )


def test_other_xmlrpc_methods_get_a_fault(start: Callable[..., str], polls: Polls) -> None:
    proxy = xmlrpc.client.ServerProxy(start() + "/xmlrpc")
    with pytest.raises(xmlrpc.client.Fault) as exc:
        proxy.pingback.ping("https://blog.example.com/a", "https://blog.example.com/b")
    assert exc.value.faultCode == -32601
    assert polls.names == []


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/json", ""]
)
def test_only_xml_is_read(start: Callable[..., str], polls: Polls, content_type: str) -> None:
    response = post_xml(start() + "/", WORDPRESS_EXTENDED_PING, **{"Content-Type": content_type})
    assert response.status_code == 415
    assert polls.names == []


def test_malformed_xml_is_a_bad_request(start: Callable[..., str], polls: Polls) -> None:
    response = post_xml(start() + "/", WORDPRESS_EXTENDED_PING[:-20])
    assert response.status_code == 400
    assert polls.names == []


def test_oversized_body_is_refused(start: Callable[..., str], polls: Polls) -> None:
    padding = b"<!-- " + b"x" * (listener_module.MAX_BODY + 1) + b" -->"
    response = post_xml(start() + "/", WORDPRESS_EXTENDED_PING + padding)
    assert response.status_code == 413
    assert polls.names == []


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_refused_quickly(
    start: Callable[..., str], polls: Polls, encoding: str
) -> None:
    url = start() + "/"
    body = BILLION_LAUGHS.replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
    started = time.monotonic()
    response = post_xml(url, body.encode(encoding))
    assert time.monotonic() - started < 3.0
    assert response.status_code == 400
    assert polls.names == []


def test_debounce_polls_a_feed_once_per_window(start: Callable[..., str], polls: Polls) -> None:
    url = start(debounce=60.0) + "/"
    for _ in range(3):
        assert post_xml(url, WORDPRESS_EXTENDED_PING).status_code == 200
    webhook = requests.post(
        url + "webhook", headers={"X-Syndicator-Secret": SECRET}, json={"feed": "news"}, timeout=5
    )
    assert webhook.json() == {"polling": [], "debounced": ["news"]}
    assert polls.names == ["news"]


def test_no_debounce_polls_every_time(start: Callable[..., str], polls: Polls) -> None:
    url = start(debounce=0.0) + "/"
    for _ in range(2):
        post_xml(url, WORDPRESS_EXTENDED_PING)
    assert polls.wait(count=2) == ["news", "news"]


def test_a_failing_on_poll_still_answers(start: Callable[..., str]) -> None:
    def on_poll(name: str) -> None:
        raise RuntimeError("scheduler stopped")

    assert post_xml(start(on_poll=on_poll) + "/", WORDPRESS_EXTENDED_PING).status_code == 200


# -- webhook ----------------------------------------------------------------------------------


def webhook(url: str, secret: str | None, **kwargs: Any) -> requests.Response:
    headers = {} if secret is None else {"X-Syndicator-Secret": secret}
    return requests.post(url + "/webhook", headers=headers, timeout=5, **kwargs)


def test_webhook_without_body_polls_every_feed(start: Callable[..., str], polls: Polls) -> None:
    response = webhook(start(), SECRET)
    assert response.status_code == 202
    assert response.json() == {"polling": ["news", "jobs"], "debounced": []}
    assert sorted(polls.wait(count=2)) == ["jobs", "news"]


def test_webhook_polls_the_named_feed(start: Callable[..., str], polls: Polls) -> None:
    response = webhook(start(), SECRET, json={"feed": "jobs"})
    assert response.status_code == 202
    assert response.json()["polling"] == ["jobs"]
    assert polls.wait() == ["jobs"]


@pytest.mark.parametrize(
    ("body", "status"),
    [({"feed": "nope"}, 404), ({"feed": 3}, 400), (["news"], 400), ("not json", 400)],
)
def test_webhook_bad_bodies(
    start: Callable[..., str], polls: Polls, body: Any, status: int
) -> None:
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    assert webhook(start(), SECRET, **kwargs).status_code == status
    assert polls.names == []


@pytest.mark.parametrize(
    ("configured", "sent"),
    [(SECRET, "wrong"), (SECRET, None), (SECRET, ""), (SECRET, SECRET + "x"), (None, ""), ("", "")],
)
def test_webhook_refuses_without_the_secret(
    start: Callable[..., str], polls: Polls, configured: str | None, sent: str | None
) -> None:
    response = webhook(start(secret=configured), sent, json={"feed": "news"})
    assert response.status_code == 403
    assert polls.names == []


def test_secrets_never_reach_the_log(
    start: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = start()
    webhook(url, SECRET)
    webhook(url, "a guess at the secret")
    assert "POST /webhook" in caplog.text  # request logging is on…
    assert SECRET not in caplog.text  # …and says nothing of the header
    assert "a guess at the secret" not in caplog.text


# -- health and metrics -----------------------------------------------------------------------


def test_healthz(start: Callable[..., str]) -> None:
    healthy = requests.get(start() + "/healthz", timeout=5)
    assert (healthy.status_code, healthy.json()) == (200, {"feeds": 2})
    sick = requests.get(start(health=lambda: (False, {"db": "down"})) + "/healthz", timeout=5)
    assert (sick.status_code, sick.json()) == (503, {"db": "down"})


def test_healthz_when_the_check_itself_fails(start: Callable[..., str]) -> None:
    def health() -> tuple[bool, dict[str, Any]]:
        raise OSError("database is locked")

    assert requests.get(start(health=health) + "/healthz", timeout=5).status_code == 503


def test_metrics_page(start: Callable[..., str], metrics: Metrics) -> None:
    url = start()
    metrics.delivery("mastodon", "published", 0.8)
    metrics.feed_poll("news", "not_modified")
    post_xml(url + "/", WORDPRESS_EXTENDED_PING)
    response = requests.get(url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == listener_module.CONTENT_TYPE_LATEST
    text = response.text
    assert 'syndicator_deliveries_total{outcome="published",target="mastodon"} 1.0' in text
    assert 'syndicator_feed_polls_total{feed="news",result="not_modified"} 1.0' in text
    assert 'syndicator_pings_total{result="accepted",source="xmlrpc"} 1.0' in text
    assert 'syndicator_queue_deliveries{state="pending",target="mastodon"} 2.0' in text


def test_metrics_survive_a_failing_queue_count(start: Callable[..., str]) -> None:
    def queue_counts() -> dict[str, dict[str, int]]:
        raise OSError("database is locked")

    response = requests.get(start(queue_counts=queue_counts) + "/metrics", timeout=5)
    assert response.status_code == 200
    assert "syndicator_pings_total" in response.text


# -- HTTP plumbing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/nope", 404, None),
        ("POST", "/xmlrpc.php", 404, None),
        ("GET", "/xmlrpc", 405, "POST"),
        ("GET", "/webhook", 405, "POST"),
        ("POST", "/healthz", 405, "GET"),
        ("DELETE", "/metrics", 405, "GET"),
    ],
)
def test_routes(
    start: Callable[..., str], method: str, path: str, status: int, allow: str | None
) -> None:
    response = requests.request(method, start() + path, timeout=5)
    assert response.status_code == status
    assert response.headers.get("Allow") == allow


def test_server_header_does_not_advertise_python(start: Callable[..., str]) -> None:
    assert requests.get(start() + "/healthz", timeout=5).headers["Server"] == "syndicator"


def test_chunked_bodies_are_refused(start: Callable[..., str], polls: Polls) -> None:
    chunks = iter([WORDPRESS_EXTENDED_PING])
    response = requests.post(start() + "/", data=chunks, headers=WORDPRESS, timeout=5)
    assert response.status_code == 411
    assert polls.names == []


def test_silent_clients_are_dropped(
    start: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "SOCKET_TIMEOUT", 0.3)
    url = start()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # …and never finishes the headers
        started = time.monotonic()
        assert slow.recv(1024) == b""  # the server hung up
        assert time.monotonic() - started < 2.0


def test_connections_past_the_cap_are_closed(
    start: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "MAX_CLIENTS", 1)
    url = start()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as hog:
        hog.sendall(b"GET /healthz HTTP/1.1\r\n")  # holds the only slot
        time.sleep(0.2)
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/healthz", timeout=3)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the slot comes back once the hog's thread ends
        try:
            assert requests.get(url + "/healthz", timeout=3).status_code == 200
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail("the listener never recovered its slot")


def test_binds_loopback_by_default_and_stops_cleanly(polls: Polls, metrics: Metrics) -> None:
    server = Listener(
        ":0",
        feeds=FEEDS,
        secret=None,
        on_poll=polls,
        health=lambda: (True, {}),
        queue_counts=dict,
        metrics=metrics,
    )
    with pytest.raises(RuntimeError):
        server.port  # noqa: B018 (not bound before start)
    server.start()
    port = server.port
    assert port > 0
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    server.stop()
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        (":8787", ("127.0.0.1", 8787)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:8787", ("::1", 8787)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["8787", "localhost", "host:port", "host:70000", ""])
def test_parse_address_refuses(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)
