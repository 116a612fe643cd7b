"""Facebook: one Page, through the Graph API with facebook-sdk and a Page access token.

A post without an image is a link post on the Page's feed; a post with an image is a photo
in the album mapped from its category (albums cannot be created through the API: the user
creates them on the Page and `check` verifies the configured ids). facebook-sdk only knows
long-expired API versions, so the pinned version goes into every request path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote

import facebook
import requests

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
from syndicator.models import AccountInfo, Draft, Post, Receipt

log = logging.getLogger(__name__)

MIN_VERSION = 24
_VERSION = re.compile(r"v(\d+)\.(\d+)")
_ID = re.compile(r"\d+")
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}
# Graph error codes (developers.facebook.com/docs/graph-api/guides/error-handling)
_AUTH_CODES = frozenset({102, 190})
_AUTH_SUBCODES = frozenset({458, 459, 460, 463, 464, 467})
_RATE_CODES = frozenset({4, 17, 32, 613})  # and 80000-80099: Business Use Case limits
_TRANSIENT_CODES = frozenset({1, 2})
_DUPLICATE_CODE = 506
_MEDIA_CODES = (324,)  # "Missing or invalid image file"
_USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage")
_GONE = "Graph error 100/33:"  # "Object with ID ... does not exist": the post was deleted
# Post insights: `post_impressions` gave way to "views" (post_media_view) in November 2025.
INSIGHTS = {"post_media_view": "impressions", "post_impressions": "impressions"}
INSIGHTS |= {"post_clicks": "clicks"}
DEFAULT_INSIGHTS = ("post_media_view", "post_clicks")


class FacebookPage:
    """A Facebook Page. Options: page_id, access_token, albums, default_album, api_base,
    api_version, insights (post insight metrics to read, [] for none)."""

    name: ClassVar[str] = "facebook"
    limits: ClassVar[Limits] = Limits(
        63206, "chars", max_images=1, max_image_bytes=4_000_000, image_types=tuple(_EXTENSIONS)
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("access_token",)
    can_lookup: ClassVar[bool] = True
    option_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "access_token",
            "albums",
            "api_base",
            "api_version",
            "default_album",
            "insights",
            "page_id",
        }
    )
    metrics: ClassVar[tuple[str, ...]] = ("likes", "comments", "shares", "impressions", "clicks")

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (ConfigError naming the key); no I/O."""
        self.context = context
        self.options = opts = Options(options, target=context.target, platform=self.name)
        self.page_id = self._id(options.get("page_id"), "page_id")
        token = options.get("access_token")
        if not isinstance(token, str) or not token.strip():
            raise opts.invalid("access_token", "is required (a Page access token)")
        self.token = token
        self.albums = self._albums(options.get("albums", {}))
        default = options.get("default_album")
        self.default_album = None if default is None else self._id(default, "default_album")
        self.api_base = opts.api_base("https://graph.facebook.com")
        self.api_version = options.get("api_version", "v24.0")
        version = _VERSION.fullmatch(str(self.api_version))
        if not version or int(version[1]) < MIN_VERSION:
            raise opts.invalid("api_version", f"must be v{MIN_VERSION}.0 or newer, like v24.0")
        render.validate_template(context.text.template)
        # A photo's caption carries the link: add it when the template has none.
        fields = {name for _, name, _, _ in string.Formatter().parse(context.text.template)}
        self.link_appended = "url" not in fields
        self.caption_text = context.text
        if self.link_appended:
            template = context.text.template + "\n\n{url}"
            self.caption_text = dataclasses.replace(context.text, template=template)
        self.insights = self._insights(options.get("insights", list(DEFAULT_INSIGHTS)))
        self.session = _http.make_session(context.user_agent)
        # In a header, never in a URL: urllib3 logs request lines with their query strings.
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def prepare(self, post: Post) -> Draft:
        """A link post, or a photo with text and link as caption in the category's album."""
        link = render.target_link(post, self.context.text)
        if not post.images:
            text = render.render(post, self.context.text, self.limits, link=link)
            return Draft(text, link)
        album, note = self._album(post)
        notes = [note]
        if self.link_appended:
            notes.append("link added to the caption: the template has no {url}")
        if len(post.images) > 1:
            notes.append(f"{len(post.images) - 1} more image(s) left out: one photo per post")
        text = render.render(post, self.caption_text, self.limits, link=link)
        return Draft(text, link, post.images[:1], album=album, notes=tuple(notes))

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """One POST: to the feed (no image) or to the album's (or Page's) photos."""
        if draft.images:
            file = self.context.load_image(draft.images[0], self.limits)
            data = {"caption": draft.text}
            if alt := file.alt or draft.images[0].alt:
                data["alt_text_custom"] = alt
            source = ("image" + _EXTENSIONS.get(file.mime, ""), file.data, file.mime)
            path = f"{quote(draft.album or self.page_id, safe='')}/photos"
            body = self._call("POST", path, data, {"source": source})
            remote_id = body.get("post_id") or body.get("id")
        else:
            path = f"{self.page_id}/feed"
            data = {"message": draft.text, **({"link": draft.link} if draft.link else {})}
            remote_id = self._call("POST", path, data).get("id")
        if not isinstance(remote_id, str | int) or not str(remote_id):
            where = f"POST /{self.api_version}/{path}"
            raise OutcomeUnknown(f"{where}: answer without the new post's id")
        log.info("target %s: posted %s (key %s)", self.context.target, remote_id, key)
        return Receipt(str(remote_id), _permalink(str(remote_id)))

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """Facebook has no idempotency key: find the draft's link in the latest photos/posts."""
        if not draft.link:
            return None
        if draft.images:
            params = {"fields": "id,name,link,page_story_id", "limit": "25"}
            where = draft.album or self.page_id
            if not draft.album:
                params["type"] = "uploaded"  # the Page's photos edge defaults to profile pictures
            for photo in _data(self._call("GET", f"{quote(where, safe='')}/photos", params)):
                if draft.link in str(photo.get("name") or ""):
                    found = str(photo.get("page_story_id") or photo["id"])
                    return self._found(key, found, photo.get("link"))
        fields = "id,message,permalink_url,created_time,attachments{unshimmed_url}"
        params = {"fields": fields, "limit": "25"}
        for item in _data(self._call("GET", f"{self.page_id}/posts", params)):
            links = [a.get("unshimmed_url") for a in _attachments(item)]
            if draft.link in str(item.get("message") or "") or draft.link in links:
                return self._found(key, str(item["id"]), item.get("permalink_url"))
        return None

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        """Reactions, comments and shares of the post, and its insights where permitted.

        The counters need `pages_read_engagement`; insights also `read_insights`. A refusal
        of the insights alone only stops asking for them (until the config reloads).
        """
        post = receipt.remote_id
        fields = "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)"
        story = "_" in post  # a Page post ({page}_{post}); a bare photo id has no shares
        try:
            fields += ",shares" if story else ""
            body = self._call("GET", quote(post, safe=""), {"fields": fields})
        except PermanentError as exc:
            if _GONE in str(exc):
                return {}
            raise
        counters = {
            "likes": _total(body.get("reactions")),
            "comments": _total(body.get("comments")),
        }
        if story:
            shares = body.get("shares")
            counters["shares"] = shares.get("count", 0) if isinstance(shares, dict) else 0
        if story and self.insights:
            counters |= self._post_insights(post)
        return {name: value for name, value in counters.items() if isinstance(value, int)}

    def _post_insights(self, post: str) -> dict[str, int]:
        """Lifetime insight metrics of one post; none from now on if the Page may not read them."""
        params = {"metric": ",".join(self.insights), "period": "lifetime"}
        try:
            body = self._call("GET", f"{quote(post, safe='')}/insights", params)
        except (PermanentError, AuthExpired) as exc:
            log.warning(
                "target %s: post insights %s unavailable, reading counters only: %s",
                self.context.target,
                ",".join(self.insights),
                exc,
            )
            self.insights = ()
            return {}
        found: dict[str, int] = {}
        for item in body.get("data") or []:
            values = item.get("values") if isinstance(item, dict) else None
            value = values[-1].get("value") if isinstance(values, list) and values else None
            if isinstance(value, int) and item.get("name") in INSIGHTS:
                found[INSIGHTS[item["name"]]] = value
        return found

    def check(self) -> AccountInfo:
        """The Page behind the token, and every configured album exists and takes uploads."""
        me = self._call("GET", "me", {"fields": "id,name"})
        if str(me.get("id")) != self.page_id:
            owner = f"{me.get('name')!r} ({me.get('id')})"
            raise self.options.invalid(
                "access_token", f"is not a Page access token for page_id {self.page_id}: {owner}"
            )
        details = self._check_albums()
        details.append(f"Graph API {self.api_version}")
        details.append(
            "token expiry: none for a Page token from a long-lived user token; a password change or"
            " role removal revokes it, and publishing then pauses as 'auth expired'"
        )
        return AccountInfo(f"{me.get('name')} (Page {self.page_id})", None, tuple(details))

    def _check_albums(self) -> list[str]:
        """One line per configured album; ConfigError naming every missing or closed one."""
        uses: dict[str, list[str]] = {}
        for category, album in self.albums.items():
            uses.setdefault(album, []).append(f"category {category!r}")
        if self.default_album:
            uses.setdefault(self.default_album, []).append("default_album")
        details, problems = [], []
        for album, used_for in uses.items():
            name = f"album {album} ({', '.join(used_for)})"
            try:
                info = self._call("GET", album, {"fields": "id,name,can_upload"})
            except PermanentError as exc:  # Graph error 100: no such album for this token
                problems.append(f"{name} cannot be read: {exc}")
                continue
            if info.get("can_upload") is False:
                problems.append(f"{name} {info.get('name')!r} does not accept uploads")
            else:
                details.append(f"{name}: {info.get('name')!r}")
        if problems:
            hint = "albums cannot be created through the API: create them on the Page"
            raise self.options.invalid(
                "albums", f"{'; '.join(problems)} ({hint}, then set their ids)"
            )
        return details

    def _call(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One Graph request through facebook-sdk; a GET's `data` are query parameters."""
        path = f"{self.api_version}/{path}"
        transport = _Transport(self.session, self.api_base, self.context.timeout)
        graph = facebook.GraphAPI(timeout=self.context.timeout, session=transport)
        args, post_args = (data, None) if method == "GET" else (None, data or {})
        try:
            result = graph.request(path, args=args, post_args=post_args, files=files, method=method)
        except facebook.GraphAPIError as exc:  # a Graph error, or a body of an unexpected type
            result = exc.result
        except (KeyError, ValueError):  # no Content-Type, or JSON that does not parse
            result = None
        response = transport.response
        if response is None or response.status_code >= 400 or not _is_object(result):
            if not isinstance(result, dict) and response is not None:
                result = _http.json_or_empty(response)
            _raise(method, path, response, result, self.token)
        return result

    def _album(self, post: Post) -> tuple[str | None, str]:
        """The album of the post's first category that has one, else the default album;
        and a note saying why, for preview and the publish log."""
        for category in post.categories:
            if album := self.albums.get(category.strip().casefold()):
                return album, f"photo into album {album} (category {category!r})"
        if self.default_album:
            return self.default_album, f"photo into default_album {self.default_album}"
        where = f"no album for categories {list(post.categories)}"
        return None, f"{where}: photo goes to the Page's own photos (/{self.page_id}/photos)"

    def _found(self, key: str, remote_id: str, url: Any) -> Receipt:
        """The receipt of an earlier attempt that landed."""
        log.info("target %s: key %s found as %s", self.context.target, key, remote_id)
        return Receipt(remote_id, url if isinstance(url, str) and url else _permalink(remote_id))

    def _albums(self, value: Any) -> dict[str, str]:
        """`albums` table: category (case-insensitive) -> numeric album id."""
        if not isinstance(value, Mapping):
            raise self.options.invalid("albums", "must be a table of category = album id")
        albums: dict[str, str] = {}
        for category, album in value.items():
            key = str(category).strip().casefold()
            if not key or key in albums:
                raise self.options.invalid(
                    "albums", f"has an empty or repeated category {category!r}"
                )
            albums[key] = self._id(album, f"albums.{category}")
        return albums

    def _insights(self, value: Any) -> tuple[str, ...]:
        """`insights`: post insight metrics to read (see INSIGHTS); [] reads none."""
        if not isinstance(value, list) or not all(v in INSIGHTS for v in value):
            known = ", ".join(INSIGHTS)
            raise self.options.invalid("insights", f"must be a list of metrics among {known}")
        return tuple(value)

    def _id(self, value: Any, key: str) -> str:
        """A numeric Graph id, given as a string or an integer."""
        text = str(value).strip() if isinstance(value, str | int) else ""
        if isinstance(value, bool) or not _ID.fullmatch(text):
            raise self.options.invalid(key, "must be a numeric id (see the Page's or album's URL)")
        return text


class _Transport:
    """What facebook-sdk takes for its session: re-roots its hard-coded graph.facebook.com
    URLs on `api_base` (per instance, the module constant untouched), sends through
    `_http.send` so transport failures map like every connector's, and keeps the raw
    response for the rate-limit headers facebook-sdk drops."""

    def __init__(self, session: requests.Session, api_base: str, timeout: float) -> None:
        self.session, self.api_base, self.timeout = session, api_base, timeout
        self.response: requests.Response | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.pop("timeout", None)  # ours: (connect, read) from the context
        kwargs.pop("proxies", None)
        path = url.removeprefix(facebook.FACEBOOK_GRAPH_URL)
        self.response = _http.send(
            self.session,
            method,
            _http.join(self.api_base, path),
            timeout=self.timeout,
            idempotent=method == "GET",
            **kwargs,
        )
        return self.response


def _raise(
    method: str, path: str, response: requests.Response | None, body: Any, token: str
) -> NoReturn:
    """Map a Graph error body (or, lacking one, the HTTP status) to an error kind."""
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code if response is not None else 0
    where = f"{method} /{path}: HTTP {status}"
    if not isinstance(error, dict):
        if response is not None and status == 429:
            raise RateLimited(where, retry_after=_wait(response.headers))
        if response is not None:
            _http.raise_for(response, "", idempotent=method == "GET")
        kind = RetryableError if method == "GET" else OutcomeUnknown
        raise kind(f"{where}: unreadable answer")
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    message = str(error.get("message") or "").replace(token, "[redacted]")[:300]
    trace = f" (fbtrace_id {error['fbtrace_id']})" if error.get("fbtrace_id") else ""
    text = f"{where}: Graph error {code}{f'/{subcode}' if subcode else ''}: {message}{trace}"
    if code in _AUTH_CODES or subcode in _AUTH_SUBCODES or status == 401:
        raise AuthExpired(text)
    if code in _RATE_CODES or 80000 <= code < 80100 or status == 429:
        raise RateLimited(text, retry_after=_wait(response.headers if response is not None else {}))
    if code == _DUPLICATE_CODE:
        raise DuplicateContent(text)
    if code in _MEDIA_CODES:  # the image itself was refused: the core posts text with link
        raise MediaError(text)
    if code in _TRANSIENT_CODES or status >= 500:
        raise (RetryableError if method == "GET" else OutcomeUnknown)(text)
    raise PermanentError(text)  # 100 invalid parameter, 10/200-299 permissions, 368 spam block


def _wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until access returns: Meta's usage headers give minutes; else Retry-After."""
    minutes: list[float] = []
    for name in _USAGE_HEADERS:
        try:
            minutes += _regain_minutes(json.loads(headers.get(name) or "null"))
        except ValueError:
            continue
    longest = max(minutes, default=0.0)
    return longest * 60.0 if longest > 0 else _http.retry_after(headers)


def _regain_minutes(usage: Any) -> list[float]:
    """Every `estimated_time_to_regain_access`, flat (app/page) or per business (BUC)."""
    if isinstance(usage, list):
        return [m for item in usage for m in _regain_minutes(item)]
    if not isinstance(usage, dict):
        return []
    value = usage.get("estimated_time_to_regain_access")
    own = [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []
    return own + [m for item in usage.values() for m in _regain_minutes(item)]


def _data(body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The objects with an id in a Graph list answer (`{"data": [...], "paging": ...}`)."""
    items = body.get("data")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("id"):
            yield item


def _attachments(post: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A post's attachments (`{"attachments": {"data": [...]}}`)."""
    attachments = post.get("attachments")
    items = attachments.get("data") if isinstance(attachments, dict) else None
    return [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []


def _total(edge: Any) -> int | None:
    """`summary.total_count` of a Graph edge asked with `.summary(total_count)`."""
    summary = edge.get("summary") if isinstance(edge, dict) else None
    total = summary.get("total_count") if isinstance(summary, dict) else None
    return total if isinstance(total, int) else None


def _is_object(result: Any) -> bool:
    """A Graph answer that is a JSON object and not an error."""
    return isinstance(result, dict) and "error" not in result


def _int(value: Any) -> int:
    """A Graph error code as an int; 0 when absent or unreadable."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _permalink(remote_id: str) -> str:
    """facebook.com resolves a post or photo id to its page."""
    return f"https://www.facebook.com/{remote_id}"
