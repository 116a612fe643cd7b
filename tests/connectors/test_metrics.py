"""Every connector's `fetch_metrics` against a local fake of its platform's metrics endpoints:
the documented request, the counters mapped to our names, deleted posts, and refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors._session_file import SessionFile
from connectors.bluesky import APPVIEW, Bluesky
from connectors.facebook import FacebookPage
from connectors.linkedin import LinkedIn
from connectors.mastodon import Mastodon
from connectors.x import X
from syndicator.connector import (
    COUNTERS,
    ConnectorContext,
    Limits,
    TextOptions,
    metric_names,
)
from syndicator.errors import AuthExpired, ConfigError, PermanentError, RateLimited
from syndicator.models import Image, ImageFile, Receipt

TOKEN = "tok-metrics-SECRET"


@dataclass
class Seen:
    method: str
    path: str
    query: str
    args: dict[str, str]
    headers: dict[str, str]


class Fake:
    """Any path on a local server; answers are queued per (method, path), the last repeats."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.seen: list[Seen] = []
        self.answers: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def base(self) -> str:
        return self.server.url_for("").rstrip("/")

    def on(self, method: str, path: str, body: Any, status: int = 200, **headers: str) -> None:
        self.answers.setdefault((method, path), []).append((status, body, headers))

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def _handle(self, request: Request) -> Response:
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.query_string.decode(),
                request.args.to_dict(),
                dict(request.headers),
            )
        )
        queue = self.answers.get((request.method, request.path))
        if not queue:
            return Response(json.dumps({"error": "no route"}), 599)
        status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return Response(json.dumps(body), status, headers, content_type="application/json")


@pytest.fixture
def fake(httpserver: HTTPServer) -> Iterator[Fake]:
    yield Fake(httpserver)


def context(tmp_path: Path, target: str = "t") -> ConnectorContext:
    def load_image(image: Image, limits: Limits) -> ImageFile:
        raise AssertionError("no image is loaded to read counters")

    return ConnectorContext(target, TextOptions(), tmp_path, load_image, timeout=5.0)


def test_every_builtin_declares_known_counters() -> None:
    for cls in (Mastodon, Bluesky, X, FacebookPage, LinkedIn):
        assert cls.metrics and set(cls.metrics) <= set(COUNTERS), cls
        assert metric_names(cls) == cls.metrics


def test_metric_names_treats_a_connector_without_them_as_reading_nothing() -> None:
    class Plain:
        pass

    class Broken:
        metrics = "likes"  # not a tuple

        def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
            return {}

    class NoMethod:
        metrics = ("likes",)

    assert metric_names(Plain()) == metric_names(Broken()) == metric_names(NoMethod()) == ()
    assert metric_names(Mastodon) == ("likes", "shares", "comments", "quotes")


# -- Mastodon --------------------------------------------------------------------------------


def mastodon(fake: Fake, tmp_path: Path) -> Mastodon:
    return Mastodon({"api_base": fake.base, "access_token": TOKEN}, context(tmp_path))


def test_mastodon_reads_the_status_counters(fake: Fake, tmp_path: Path) -> None:
    status = {"id": "110", "favourites_count": 7, "reblogs_count": 3, "replies_count": 2}
    fake.on("GET", "/api/v1/statuses/110", status | {"quotes_count": 1})
    counters = mastodon(fake, tmp_path).fetch_metrics(Receipt("110", "https://m/@a/110"))
    assert counters == {"likes": 7, "shares": 3, "comments": 2, "quotes": 1}
    (seen,) = fake.seen
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


def test_mastodon_write_only_token_reads_public_statuses_anonymously(
    fake: Fake, tmp_path: Path
) -> None:
    fake.on("GET", "/api/v1/statuses/110", {"error": "outside the authorized scopes"}, 403)
    fake.on("GET", "/api/v1/statuses/110", {"id": "110", "favourites_count": 1})
    assert mastodon(fake, tmp_path).fetch_metrics(Receipt("110")) == {"likes": 1}
    assert "Authorization" in fake.seen[0].headers
    assert "Authorization" not in fake.seen[1].headers


def test_mastodon_refusal_deleted_and_rate_limit(fake: Fake, tmp_path: Path) -> None:
    connector = mastodon(fake, tmp_path)
    fake.on("GET", "/api/v1/statuses/1", {"error": "scopes"}, 403)
    fake.on("GET", "/api/v1/statuses/1", {"error": "This API requires an authenticated user"}, 401)
    with pytest.raises(AuthExpired, match="401"):
        connector.fetch_metrics(Receipt("1"))
    fake.on("GET", "/api/v1/statuses/2", {"error": "Record not found"}, 404)
    assert connector.fetch_metrics(Receipt("2")) == {}
    fake.on("GET", "/api/v1/statuses/3", {"error": "Too many requests"}, 429)
    with pytest.raises(RateLimited):
        connector.fetch_metrics(Receipt("3"))


# -- Bluesky ---------------------------------------------------------------------------------

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
URI = f"at://{DID}/app.bsky.feed.post/3lersne2vt6jf"
VIEW = {"uri": URI, "likeCount": 12, "repostCount": 4, "replyCount": 3, "quoteCount": 1}


def bluesky(tmp_path: Path, **options: Any) -> Bluesky:
    values = {"api_base": "https://pds.invalid", "handle": "blog.bsky.social"}
    return Bluesky({**values, "app_password": "app-pass-SECRET", **options}, context(tmp_path))


def test_bluesky_reads_getposts_from_the_public_appview_without_logging_in(
    fake: Fake, tmp_path: Path
) -> None:
    assert bluesky(tmp_path).appview == APPVIEW == "https://public.api.bsky.app"
    fake.on("GET", "/xrpc/app.bsky.feed.getPosts", {"posts": [VIEW]})
    counters = bluesky(tmp_path, appview=fake.base).fetch_metrics(Receipt(URI))
    assert counters == {"likes": 12, "shares": 4, "comments": 3, "quotes": 1}
    (seen,) = fake.seen  # no createSession: logins are scarce
    assert seen.args == {"uris": URI} and "Authorization" not in seen.headers


def test_bluesky_through_the_pds_proxy_uses_the_session(fake: Fake, tmp_path: Path) -> None:
    session = {"did": DID, "handle": "blog.bsky.social", "accessJwt": "A", "refreshJwt": "R"}
    SessionFile(tmp_path / "bluesky-t.json", f"{fake.base} blog.bsky.social").save(session)
    fake.on("GET", "/xrpc/app.bsky.feed.getPosts", {"posts": [VIEW]})
    connector = bluesky(tmp_path, api_base=fake.base, appview="pds")
    assert connector.fetch_metrics(Receipt(URI))["likes"] == 12
    assert fake.seen[0].headers["Authorization"] == "Bearer A"


def test_bluesky_deleted_post_refusal_and_bad_option(fake: Fake, tmp_path: Path) -> None:
    connector = bluesky(tmp_path, appview=fake.base)
    fake.on("GET", "/xrpc/app.bsky.feed.getPosts", {"posts": []})
    assert connector.fetch_metrics(Receipt(URI)) == {}
    fake.answers.clear()
    fake.on("GET", "/xrpc/app.bsky.feed.getPosts", {"error": "AuthMissing", "message": "no"}, 401)
    with pytest.raises(AuthExpired, match="AuthMissing"):
        connector.fetch_metrics(Receipt(URI))
    with pytest.raises(ConfigError, match="appview"):
        bluesky(tmp_path, appview="http://appview.example")


# -- X ---------------------------------------------------------------------------------------

KEYS = {k: f"{k}-SECRET" for k in ("api_key", "api_secret", "access_token", "access_token_secret")}
METRICS = {
    "retweet_count": 5,
    "reply_count": 2,
    "like_count": 21,
    "quote_count": 1,
    "bookmark_count": 3,
    "impression_count": 1540,
}


def x(fake: Fake, tmp_path: Path) -> X:
    return X({"api_base": fake.base, **KEYS}, context(tmp_path))


def test_x_reads_public_metrics(fake: Fake, tmp_path: Path) -> None:
    fake.on("GET", "/2/tweets/1790", {"data": {"id": "1790", "public_metrics": METRICS}})
    counters = x(fake, tmp_path).fetch_metrics(Receipt("1790"))
    assert counters == {
        "likes": 21,
        "shares": 5,
        "comments": 2,
        "quotes": 1,
        "bookmarks": 3,
        "impressions": 1540,
    }
    (seen,) = fake.seen
    assert seen.args == {"tweet.fields": "public_metrics"}
    assert seen.headers["Authorization"].startswith("OAuth ")  # user context


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            403,
            {
                "title": "Client Forbidden",
                "reason": "client-not-enrolled",
                "detail": "When authenticating requests to the Twitter API v2 endpoints, you "
                "must use keys and tokens from a Twitter developer App that is attached to a "
                "Project.",
                "type": "https://api.twitter.com/2/problems/client-forbidden",
            },
            PermanentError,
        ),
        (402, {"title": "Payment Required", "detail": "credits depleted"}, AuthExpired),
        (401, {"title": "Unauthorized", "detail": "Unauthorized"}, AuthExpired),
        (429, {"title": "Too Many Requests"}, RateLimited),
    ],
)
def test_x_refusals(
    fake: Fake, tmp_path: Path, status: int, body: dict[str, Any], kind: type[Exception]
) -> None:
    fake.on("GET", "/2/tweets/1790", body, status)
    with pytest.raises(kind) as raised:
        x(fake, tmp_path).fetch_metrics(Receipt("1790"))
    assert "SECRET" not in str(raised.value)


def test_x_deleted_post(fake: Fake, tmp_path: Path) -> None:
    error = {"title": "Not Found Error", "resource_id": "1790", "type": "...resource-not-found"}
    fake.on("GET", "/2/tweets/1790", {"errors": [error]})
    assert x(fake, tmp_path).fetch_metrics(Receipt("1790")) == {}


# -- Facebook --------------------------------------------------------------------------------

PAGE = "1122334455"
POST = f"{PAGE}_9988"
FIELDS = "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)"


def facebook(fake: Fake, tmp_path: Path, **options: Any) -> FacebookPage:
    values = {"page_id": PAGE, "access_token": TOKEN, "api_base": fake.base, **options}
    return FacebookPage(values, context(tmp_path))


def engagement_body() -> dict[str, Any]:
    return {
        "id": POST,
        "reactions": {"data": [], "summary": {"total_count": 31}},
        "comments": {"data": [], "summary": {"total_count": 6, "order": "ranked"}},
        "shares": {"count": 4},
    }


def insights_body(views: int, clicks: int) -> dict[str, Any]:
    def metric(name: str, value: int) -> dict[str, Any]:
        return {"name": name, "period": "lifetime", "values": [{"value": value}], "id": "x"}

    return {"data": [metric("post_media_view", views), metric("post_clicks", clicks)]}


def test_facebook_reads_reactions_comments_shares_and_insights(fake: Fake, tmp_path: Path) -> None:
    fake.on("GET", f"/v24.0/{POST}", engagement_body())
    fake.on("GET", f"/v24.0/{POST}/insights", insights_body(2400, 75))
    counters = facebook(fake, tmp_path).fetch_metrics(Receipt(POST))
    assert counters == {
        "likes": 31,
        "comments": 6,
        "shares": 4,
        "impressions": 2400,
        "clicks": 75,
    }
    first, second = fake.seen
    assert first.args == {"fields": FIELDS + ",shares"}
    assert second.args == {"metric": "post_media_view,post_clicks", "period": "lifetime"}
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in fake.seen)
    assert all(TOKEN not in s.query for s in fake.seen)


def test_facebook_insights_refused_keeps_counters_and_stops_asking_for_them(
    fake: Fake, tmp_path: Path
) -> None:
    fake.on("GET", f"/v24.0/{POST}", {**engagement_body(), "shares": None})
    error = {"message": "(#10) requires read_insights", "type": "OAuthException", "code": 10}
    fake.on("GET", f"/v24.0/{POST}/insights", {"error": error}, 400)
    connector = facebook(fake, tmp_path)
    assert connector.fetch_metrics(Receipt(POST)) == {"likes": 31, "comments": 6, "shares": 0}
    assert connector.fetch_metrics(Receipt(POST))["likes"] == 31
    assert fake.paths().count(f"/v24.0/{POST}/insights") == 1


def test_facebook_photo_without_shares_or_insights_and_no_insights_option(
    fake: Fake, tmp_path: Path
) -> None:
    fake.on("GET", "/v24.0/777", {"id": "777", **{k: engagement_body()[k] for k in ("reactions",)}})
    assert facebook(fake, tmp_path).fetch_metrics(Receipt("777")) == {"likes": 31}
    assert fake.seen[0].args == {"fields": FIELDS}
    fake.on("GET", f"/v24.0/{POST}", engagement_body())
    assert "impressions" not in facebook(fake, tmp_path, insights=[]).fetch_metrics(Receipt(POST))
    assert not any(p.endswith("/insights") for p in fake.paths())
    with pytest.raises(ConfigError, match="insights"):
        facebook(fake, tmp_path, insights=["post_engaged_users"])


@pytest.mark.parametrize(
    ("code", "subcode", "kind"),
    [(200, 0, PermanentError), (10, 0, PermanentError), (190, 463, AuthExpired)],
)
def test_facebook_refusals(
    fake: Fake, tmp_path: Path, code: int, subcode: int, kind: type[Exception]
) -> None:
    error = {"message": "(#200) missing pages_read_engagement", "code": code}
    error |= {"error_subcode": subcode} if subcode else {}
    fake.on("GET", f"/v24.0/{POST}", {"error": error}, 400 if code != 190 else 401)
    with pytest.raises(kind):
        facebook(fake, tmp_path).fetch_metrics(Receipt(POST))


def test_facebook_deleted_post(fake: Fake, tmp_path: Path) -> None:
    error = {
        "message": f"Unsupported get request. Object with ID '{POST}' does not exist",
        "type": "GraphMethodException",
        "code": 100,
        "error_subcode": 33,
    }
    fake.on("GET", f"/v24.0/{POST}", {"error": error}, 400)
    assert facebook(fake, tmp_path).fetch_metrics(Receipt(POST)) == {}


# -- LinkedIn --------------------------------------------------------------------------------

ORG = "urn:li:organization:5515715"
SHARE = "urn:li:share:7100000000000000001"
UGC = "urn:li:ugcPost:7100000000000000002"
SOCIAL = {
    "likesSummary": {"totalLikes": 18, "likedByCurrentUser": False},
    "commentsSummary": {"totalFirstLevelComments": 4, "aggregatedTotalComments": 6},
}
STATS = {
    "elements": [
        {
            "organizationalEntity": ORG,
            "share": SHARE,
            "totalShareStatistics": {
                "uniqueImpressionsCount": 800,
                "shareCount": 3,
                "engagement": 0.05,
                "clickCount": 41,
                "likeCount": 18,
                "impressionCount": 1200,
                "commentCount": 4,
            },
        }
    ]
}


def linkedin(fake: Fake, tmp_path: Path, author: str = ORG, **options: Any) -> LinkedIn:
    values = {"access_token": TOKEN, "author": author, "api_base": fake.base, **options}
    return LinkedIn(values, context(tmp_path))


def test_linkedin_organization_reads_social_actions_and_share_statistics(
    fake: Fake, tmp_path: Path
) -> None:
    fake.on("GET", f"/rest/socialActions/{SHARE}", SOCIAL)
    fake.on("GET", "/rest/organizationalEntityShareStatistics", STATS)
    counters = linkedin(fake, tmp_path).fetch_metrics(Receipt(SHARE))
    assert counters == {"likes": 18, "comments": 4, "shares": 3, "impressions": 1200, "clicks": 41}
    social, stats = fake.seen
    assert social.headers["Linkedin-Version"] and social.headers["X-Restli-Protocol-Version"]
    assert stats.args == {
        "q": "organizationalEntity",
        "organizationalEntity": ORG,
        "shares": f"List({SHARE})",
    }
    assert "List(urn%3Ali%3Ashare%3A" in stats.query  # Rest.li 2.0: encoded inside List()


def test_linkedin_ugc_posts_use_the_ugcposts_parameter(fake: Fake, tmp_path: Path) -> None:
    fake.on("GET", f"/rest/socialActions/{UGC}", SOCIAL)
    fake.on("GET", "/rest/organizationalEntityShareStatistics", STATS)
    linkedin(fake, tmp_path).fetch_metrics(Receipt(UGC))
    assert fake.seen[1].args["ugcPosts"] == f"List({UGC})"


def test_linkedin_statistics_refused_keeps_likes_and_comments(fake: Fake, tmp_path: Path) -> None:
    fake.on("GET", f"/rest/socialActions/{SHARE}", SOCIAL)
    denied = {"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "no"}
    fake.on("GET", "/rest/organizationalEntityShareStatistics", denied, 403)
    connector = linkedin(fake, tmp_path)
    assert connector.fetch_metrics(Receipt(SHARE)) == {"likes": 18, "comments": 4}
    connector.fetch_metrics(Receipt(SHARE))
    assert fake.paths().count("/rest/organizationalEntityShareStatistics") == 1


def test_linkedin_member_reads_social_actions_only_and_403_is_a_refusal(
    fake: Fake, tmp_path: Path
) -> None:
    member = linkedin(fake, tmp_path, author="urn:li:person:abc123")
    fake.on("GET", f"/rest/socialActions/{SHARE}", SOCIAL)
    assert member.fetch_metrics(Receipt(SHARE)) == {"likes": 18, "comments": 4}
    assert fake.paths() == [f"/rest/socialActions/{SHARE}"]
    fake.answers.clear()
    denied = {"status": 403, "code": "ACCESS_DENIED", "message": "Not enough permissions"}
    fake.on("GET", f"/rest/socialActions/{SHARE}", denied, 403)
    with pytest.raises(PermanentError, match="r_organization_social"):
        member.fetch_metrics(Receipt(SHARE))
    fake.on("GET", f"/rest/socialActions/{UGC}", {"message": "Not found"}, 404)
    assert member.fetch_metrics(Receipt(UGC)) == {}
    with pytest.raises(ConfigError, match="share_statistics"):
        linkedin(fake, tmp_path, share_statistics="yes")
