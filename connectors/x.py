"""X (Twitter): one account, posting through API v2 with OAuth 1.0a user-context keys.

tweepy builds the v2 requests (`create_tweet`, `get_me`, `get_users_tweets`); every request,
tweepy's and the v2 media upload tweepy 4.17 lacks, goes through one session, one signer,
one timeout and one error mapping here. X has no idempotency key, so `lookup` searches the
account's latest posts for the draft's link before the core resends anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import requests
import tweepy

from connectors import _http
from connectors._options import Options
from syndicator import render
from syndicator.connector import ConnectorContext, Limits
from syndicator.errors import (
    AuthExpired,
    DuplicateContent,
    MediaError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from syndicator.models import AccountInfo, Draft, Image, Post, Receipt

log = logging.getLogger(__name__)

SECRETS = ("api_key", "api_secret", "access_token", "access_token_secret")
ALT_MAX = 1000  # alt_text limit of the media metadata endpoint
LOOKUP_COUNT = 10
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class X:
    """An X account. Options: api_key, api_secret, access_token, access_token_secret
    (all secret), api_base."""

    name: ClassVar[str] = "x"
    # GIF is left out: the one-shot v2 upload takes only tweet_image (JPEG, PNG, WebP, BMP,
    # TIFF); GIFs need the chunked flow, so the core re-encodes them as still images.
    limits: ClassVar[Limits] = Limits(
        280,
        "twitter",
        url_length=23,
        max_images=4,
        max_image_bytes=5_000_000,
        image_types=("image/jpeg", "image/png", "image/webp"),
    )
    secret_keys: ClassVar[tuple[str, ...]] = SECRETS
    can_lookup: ClassVar[bool] = True
    option_keys: ClassVar[frozenset[str]] = frozenset(
        {"access_token", "access_token_secret", "api_base", "api_key", "api_secret"}
    )
    metrics: ClassVar[tuple[str, ...]] = (
        "likes",
        "shares",
        "comments",
        "quotes",
        "bookmarks",
        "impressions",
    )

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (ConfigError naming the key); no I/O."""
        self.context = context
        self.options = opts = Options(options, target=context.target, platform=self.name)
        self.api_base = opts.api_base("https://api.x.com")
        keys = {key: opts.string(key, required=True).strip() for key in SECRETS}
        self.secrets = tuple(keys.values())
        self.session = _http.make_session(context.user_agent)
        self.auth = tweepy.OAuth1UserHandler(*keys.values()).apply_auth()
        self.client = _Client(self._call, self.session, **keys)
        self.user_id: str | None = None

    def prepare(self, post: Post) -> Draft:
        """The post's text (weighted 280) with the exact link sent, and up to four images."""
        link = render.target_link(post, self.context.text)
        images = post.images[: self.limits.max_images]
        dropped = len(post.images) - len(images)
        notes = (f"{dropped} image(s) over the limit of {len(images)} left out",) if dropped else ()
        return Draft(
            text=render.render(post, self.context.text, self.limits, link=link),
            link=link,
            images=images,
            notes=notes,
        )

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """Upload the images, then create the post once (a failure after sending is unknown)."""
        media_ids = [self._upload(image) for image in draft.images]
        response = self.client.create_tweet(
            text=draft.text, media_ids=media_ids or None, user_auth=True
        )
        tweet = _data(response, "id", outcome_known=False)
        log.info("target %s: posted %s (key %s)", self.context.target, tweet["id"], key)
        return Receipt(remote_id=str(tweet["id"]), url=_status_url(str(tweet["id"])))

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """Find the draft's link among the account's latest original posts."""
        if not draft.link:
            return None
        response = self.client.get_users_tweets(
            self._user_id(),
            max_results=LOOKUP_COUNT,
            tweet_fields=["entities", "created_at"],
            exclude=["retweets", "replies"],
            user_auth=True,
        )
        body = _http.json_or_empty(response)
        tweets = body.get("data") if isinstance(body, dict) else None
        wanted = draft.link.rstrip("/")
        for tweet in tweets if isinstance(tweets, list) else []:
            urls = (tweet.get("entities") or {}).get("urls") or []
            found = {u.get(name) for u in urls for name in ("expanded_url", "unwound_url")}
            if wanted in {url.rstrip("/") for url in found if url}:
                log.info("target %s: key %s found as %s", self.context.target, key, tweet["id"])
                return Receipt(remote_id=str(tweet["id"]), url=_status_url(str(tweet["id"])))
        return None

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        """The post's public_metrics (GET /2/tweets/:id); {} once it is deleted.

        Every read is billed under pay-per-use, and the legacy Free tier answers 403: the
        core then records the refusal and stops asking.
        """
        path = f"/2/tweets/{quote(receipt.remote_id, safe='')}"
        params = {"tweet.fields": "public_metrics"}
        body = _http.json_or_empty(self._call("GET", path, idempotent=True, params=params))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            if isinstance(body, dict) and body.get("errors"):  # "Not Found Error": deleted
                return {}
            raise RetryableError(f"GET /2/tweets/{receipt.remote_id}: answer without data")
        counts = data.get("public_metrics") or {}
        names = {
            "like_count": "likes",
            "retweet_count": "shares",
            "reply_count": "comments",
            "quote_count": "quotes",
            "bookmark_count": "bookmarks",
            "impression_count": "impressions",
        }
        return {ours: counts[theirs] for theirs, ours in names.items() if theirs in counts}

    def check(self) -> AccountInfo:
        """The account behind the access token."""
        user = _data(self.client.get_me(user_auth=True), "username")
        self.user_id = str(user["id"])
        return AccountInfo(account=f"@{user['username']}", details=(f"user id {user['id']}",))

    def _user_id(self) -> str:
        """The account's numeric id, asked once per connector."""
        if self.user_id is None:
            self.user_id = str(_data(self.client.get_me(user_auth=True), "id")["id"])
        return self.user_id

    def _upload(self, image: Image) -> str:
        """One-shot v2 upload of one image, then its alt text; returns the media id."""
        file = self.context.load_image(image, self.limits)
        files = {"media": ("image" + _EXTENSIONS.get(file.mime, ""), file.data, file.mime)}
        data = {"media_category": "tweet_image", "media_type": file.mime}
        try:  # an upload that may have landed leaves an unused media id, never a duplicate post
            response = self._call(
                "POST", "/2/media/upload", idempotent=True, data=data, files=files
            )
        except PermanentError as exc:  # X refused this image: the core may post without it
            raise MediaError(str(exc)) from None
        media_id = str(_data(response, "id")["id"])
        alt = file.alt or image.alt
        if alt:
            alt = alt[: ALT_MAX - 1] + "…" if len(alt) > ALT_MAX else alt
            metadata = {"id": media_id, "metadata": {"alt_text": {"text": alt}}}
            self._call("POST", "/2/media/metadata", idempotent=True, json=metadata)
        return media_id

    def _call(
        self, method: str, path: str, *, idempotent: bool, **kwargs: Any
    ) -> requests.Response:
        """One signed request to the configured base URL, errors mapped to the core's kinds."""
        url = _http.join(self.api_base, path)
        timeout = self.context.timeout
        response = _http.send(
            self.session,
            method,
            url,
            timeout=timeout,
            idempotent=idempotent,
            auth=self.auth,
            **kwargs,
        )
        if response.status_code >= 400:
            self._raise(response, idempotent)
        return response

    def _raise(self, response: requests.Response, idempotent: bool) -> None:
        """X's answers to failures: duplicate, credits, write permission, rate limits."""
        body = _http.json_or_empty(response)
        message = _message(body)
        for secret in self.secrets:
            message = message.replace(secret, "[redacted]")
        status, message = response.status_code, message[:300]
        text = f"{_http.where(response)}: HTTP {status}"
        text += f": {message}" if message else ""
        problem = str(body.get("type", "")) if isinstance(body, dict) else ""
        if status == 403 and "duplicate content" in message.lower():
            raise DuplicateContent(text)
        if status == 403 and problem.endswith("/oauth1-permissions"):
            raise AuthExpired(text + " (regenerate the access token after allowing Read and write)")
        if status == 402:  # pay-per-use credits used up: nothing was posted
            raise AuthExpired(text + " (add X API credits in the developer console)")
        if status == 429:
            raise RateLimited(text, retry_after=_rate_limit_wait(response.headers))
        _http.raise_for(response, message, idempotent=idempotent)


class _Client(tweepy.Client):
    """tweepy's v2 client sending through `X._call`.

    tweepy 4.17 hard-codes https://api.twitter.com in `request`, sends without a timeout and
    logs headers, so that one method is replaced; tweepy still builds routes and payloads.
    """

    def __init__(
        self, call: Callable[..., requests.Response], session: requests.Session, **keys: str
    ) -> None:
        super().__init__(
            consumer_key=keys["api_key"],
            consumer_secret=keys["api_secret"],
            access_token=keys["access_token"],
            access_token_secret=keys["access_token_secret"],
            return_type=requests.Response,
        )
        self.session = session  # instead of the one tweepy made; `request` sends through it
        self.call = call

    def request(
        self,
        method: str,
        route: str,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        user_auth: bool = False,
    ) -> requests.Response:
        """Every call is signed with the user's keys; only reads are safe to repeat."""
        return self.call(method, route, idempotent=method == "GET", params=params, json=json)


def _data(response: requests.Response, key: str, *, outcome_known: bool = True) -> dict[str, Any]:
    """The `data` object of a successful answer, which must hold `key`.

    An unreadable answer to a create may still mean the post exists: OutcomeUnknown.
    """
    body = _http.json_or_empty(response)
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict) and key in data:
        return data
    kind = RetryableError if outcome_known else OutcomeUnknown
    raise kind(f"{_http.where(response)}: HTTP {response.status_code}: answer without data.{key}")


def _message(body: Any) -> str:
    """X's error text: v2 problem `detail`, or the messages of an `errors` list."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    items = errors if isinstance(errors, list) else []
    texts = [str(e.get("message") or e.get("detail") or "") for e in items if isinstance(e, dict)]
    texts = [text for text in texts if text]
    detail = body.get("detail") or body.get("title") or body.get("error") or ""
    return "; ".join(texts) if texts else str(detail)


def _rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted window resets: the 15-minute one, or a spent 24-hour cap."""
    waits = [_http.retry_after(headers)]
    for scope in ("user", "app"):
        if (headers.get(f"x-{scope}-limit-24hour-remaining") or "").strip() == "0":
            reset = headers.get(f"x-{scope}-limit-24hour-reset") or ""
            waits.append(_http.retry_after({"x-rate-limit-reset": reset}))
    known = [wait for wait in waits if wait is not None]
    return max(known) if known else None


def _status_url(tweet_id: str) -> str:
    """A post's public URL; this form needs no username."""
    return f"https://x.com/i/web/status/{quote(tweet_id, safe='')}"
