"""LinkedIn: a member profile or an organization page, through the versioned REST API.

Posts go to `POST /rest/posts` with a `LinkedIn-Version` and the Rest.li 2.0 header. LinkedIn
does not scrape links, so a link post carries an article card built here (title, excerpt and a
thumbnail uploaded through the Images API). The commentary is LinkedIn's "little" text format,
where an unescaped reserved character silently cuts the post short (see `_linkedin_text`).
There is no idempotency key: LinkedIn refuses an identical repeat (422 DUPLICATE_POST) and
`lookup` reads the author's latest posts.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

import requests

from connectors import _http
from connectors._linkedin_text import URL, to_little, trim_url
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
from syndicator.models import AccountInfo, Card, Draft, Image, Post, Receipt

log = logging.getLogger(__name__)

# July 2026. LinkedIn serves each monthly version for at least a year, then answers 426.
DEFAULT_VERSION = "202607"
VISIBILITIES = ("PUBLIC", "CONNECTIONS", "LOGGED_IN")
LINK_STYLES = ("article", "image")
TITLE_MAX = 400
DESCRIPTION_MAX = 300
LOOKUP_COUNT = 20
EXPIRY_WARNING = timedelta(days=7)
DISTRIBUTION = {
    "feedDistribution": "MAIN_FEED",
    "targetEntities": [],
    "thirdPartyDistributionChannels": [],
}

_AUTHOR = re.compile(r"urn:li:(person:[A-Za-z0-9_-]+|organization:[0-9]+)")
_VERSION = re.compile(r"20[0-9]{2}(0[1-9]|1[0-2])(\.[0-9]{2})?")
_DAILY = re.compile(r"\bday\b|\bdaily\b", re.IGNORECASE)
_JAVA_PREFIX = re.compile(r"^(?:[\w$]+\.)+[\w$]*Exception:\s*")


class LinkedIn:
    """A LinkedIn member or organization. Options: access_token, author, api_base, version,
    visibility, link_style, token_expires, share_statistics."""

    name: ClassVar[str] = "linkedin"
    limits: ClassVar[Limits] = Limits(
        3000,
        "chars",
        max_images=1,
        max_image_bytes=5_000_000,
        max_image_side=6012,  # keeps any shape under the 36,152,320-pixel limit
        image_types=("image/jpeg", "image/png", "image/gif"),
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("access_token",)
    can_lookup: ClassVar[bool] = True
    option_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "access_token",
            "api_base",
            "author",
            "link_style",
            "share_statistics",
            "token_expires",
            "version",
            "visibility",
        }
    )
    metrics: ClassVar[tuple[str, ...]] = ("likes", "comments", "shares", "impressions", "clicks")

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (ConfigError naming the key); no I/O."""
        self.context = context
        self.options = opts = Options(options, target=context.target, platform=self.name)
        self.token = opts.string("access_token", required=True)
        self.author = opts.string("author", required=True).strip()
        if not _AUTHOR.fullmatch(self.author):
            raise opts.invalid(
                "author", "must be urn:li:organization:<number> or urn:li:person:<id>"
            )
        self.api_base = opts.api_base("https://api.linkedin.com")
        self.version = opts.string("version") or DEFAULT_VERSION
        if not _VERSION.fullmatch(self.version):
            raise opts.invalid("version", "must be a LinkedIn-Version such as 202607 (YYYYMM)")
        self.visibility = opts.choice("visibility", VISIBILITIES)
        self.link_style = opts.choice("link_style", LINK_STYLES)
        self.token_expires = self._expiry(options.get("token_expires"))
        statistics = options.get("share_statistics", True)
        if not isinstance(statistics, bool):
            raise opts.invalid("share_statistics", "must be true or false")
        # Impressions, clicks and reshares exist for organization posts only.
        self.share_statistics = statistics and ":organization:" in self.author
        self.session = _http.make_session(context.user_agent)
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def prepare(self, post: Post) -> Draft:
        """Commentary, and either an article card (thumbnail: the post's image) or an image post."""
        link = render.target_link(post, self.context.text)
        image = post.images[0] if post.images else None
        kind = "image" if image and self.link_style == "image" else "article"
        card = None
        if kind == "article":
            title = self._plain(post, "{title}", TITLE_MAX) or link
            card = Card(link, title, self._plain(post, "{summary}", DESCRIPTION_MAX), image)
        dropped = max(len(post.images) - 1, 0)
        return Draft(
            text=self._commentary(post, link),
            link=link,
            images=(image,) if image else (),
            card=card,
            fields={"kind": kind, "visibility": self.visibility},
            notes=(f"{dropped} more image(s) left out: one per post",) if dropped else (),
        )

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """Upload the image (thumbnail or media), then create the post once."""
        body: dict[str, Any] = {
            "author": self.author,
            "commentary": draft.text,
            "visibility": draft.fields.get("visibility", self.visibility),
            "distribution": DISTRIBUTION,
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        content = self._content(draft)
        if content:
            body["content"] = content
        response = self._call("POST", "/rest/posts", json=body)
        urn = response.headers.get("x-restli-id", "")
        if not urn:
            log.warning("target %s: post created without an id (key %s)", self.context.target, key)
            return Receipt(remote_id="")
        log.info("target %s: posted %s (key %s)", self.context.target, urn, key)
        return Receipt(remote_id=urn, url=_feed_url(urn))

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """Find the draft's link among the author's latest posts (article source or commentary).

        A failure to read stays OutcomeUnknown: a retryable error would send the delivery back
        to pending, where it would be published again without looking first.
        """
        if not draft.link:
            return None
        try:
            posts = self._latest_posts()
        except (RetryableError, AuthExpired) as exc:
            raise OutcomeUnknown(f"lookup failed: {exc}", retry_after=exc.retry_after) from None
        wanted = _normal(draft.link)
        for item in posts:
            article = (item.get("content") or {}).get("article") or {}
            links = [article.get("source") or "", *URL.findall(item.get("commentary") or "")]
            if wanted in {_normal(trim_url(link)) for link in links if link}:
                urn = str(item.get("id") or "")
                log.info("target %s: key %s found as %s", self.context.target, key, urn)
                return Receipt(remote_id=urn, url=_feed_url(urn) if urn else None)
        return None

    def fetch_metrics(self, receipt: Receipt) -> dict[str, int]:
        """Likes and comments (socialActions); for an organization also reshares, impressions
        and clicks (organizationalEntityShareStatistics) where the token may read them."""
        urn = receipt.remote_id
        path = f"/rest/socialActions/{quote(urn, safe='')}"
        response = self._call("GET", path, idempotent=True, check=False)
        if response.status_code == 404:
            return {}
        if response.status_code == 403:
            raise PermanentError(
                f"GET /rest/socialActions: HTTP 403: {self._error_text(response)} (reading likes"
                " and comments needs r_organization_social, or the restricted r_member_social)"
            )
        self._raise_for(response, idempotent=True)
        body = _http.json_object(response)
        counters = {
            "likes": (body.get("likesSummary") or {}).get("totalLikes"),
            "comments": (body.get("commentsSummary") or {}).get("totalFirstLevelComments"),
        }
        if self.share_statistics:
            counters |= self._share_statistics(urn)
        return {name: value for name, value in counters.items() if isinstance(value, int)}

    def _share_statistics(self, urn: str) -> dict[str, int | None]:
        """Lifetime statistics of one organization post; none from now on if refused (they
        need rw_organization_admin: an ADMINISTRATOR of the page)."""
        kind = "ugcPosts" if urn.startswith("urn:li:ugcPost:") else "shares"
        query = (
            f"q=organizationalEntity&organizationalEntity={quote(self.author, safe='')}"
            f"&{kind}=List({quote(urn, safe='')})"  # Rest.li 2.0: URNs encoded inside List()
        )
        path = f"/rest/organizationalEntityShareStatistics?{query}"
        response = self._call("GET", path, idempotent=True, check=False)
        if response.status_code in (401, 403):
            log.warning(
                "target %s: share statistics refused, likes and comments only: HTTP %s: %s",
                self.context.target,
                response.status_code,
                self._error_text(response),
            )
            self.share_statistics = False
            return {}
        self._raise_for(response, idempotent=True)
        elements = _http.json_object(response).get("elements") or []
        first = elements[0] if isinstance(elements, list) and elements else {}
        totals = (first.get("totalShareStatistics") if isinstance(first, dict) else None) or {}
        return {
            "shares": totals.get("shareCount"),
            "impressions": totals.get("impressionCount"),
            "clicks": totals.get("clickCount"),
        }

    def check(self) -> AccountInfo:
        """The organization or member behind the author, and the token's configured expiry."""
        kind, ident = self.author.split(":")[2:]
        details = [f"LinkedIn-Version {self.version}"]
        if kind == "organization":
            path, versioned, name_key = f"/rest/organizations/{ident}", True, "localizedName"
        else:
            path, versioned, name_key = "/v2/userinfo", False, "name"
        response = self._call("GET", path, idempotent=True, versioned=versioned, check=False)
        account = self.author
        if response.status_code == 403:  # the token is valid, but may not read this profile
            details.append(f"cannot read {path} (HTTP 403): {self._error_text(response)}")
        else:
            self._raise_for(response, idempotent=True)
            body = _http.json_object(response)
            account = f"{body.get(name_key) or '?'} ({self.author})"
            if kind == "person" and body.get("sub") not in (None, ident):
                details.append(f"the token belongs to urn:li:person:{body['sub']}: posts will fail")
        details += self._expiry_details()
        return AccountInfo(account=account, expires_at=self.token_expires, details=tuple(details))

    def _content(self, draft: Draft) -> dict[str, Any] | None:
        """`content` of the post; the thumbnail is the draft's image, so dropping it drops both."""
        image = draft.images[0] if draft.images else None
        urn, alt = self._upload(image) if image else (None, "")
        if draft.fields.get("kind") == "image" and urn:
            return {"media": {"id": urn, **({"altText": alt} if alt else {})}}
        if draft.card is None:
            return None
        article = {"source": draft.card.url, "title": draft.card.title}
        if draft.card.description:
            article["description"] = draft.card.description
        if urn:
            article["thumbnail"] = urn
        return {"article": article}

    def _upload(self, image: Image) -> tuple[str, str]:
        """Upload one image through the Images API; returns its URN and alt text.

        Nothing is posted yet, so any failure to reach LinkedIn here is retryable.
        """
        file = self.context.load_image(image, self.limits)
        try:
            return self._send_image(file.data), file.alt or image.alt
        except PermanentError as exc:  # MediaError: the core posts without the image
            raise MediaError(f"image upload refused: {exc}") from None

    def _send_image(self, data: bytes) -> str:
        """Register an upload, then PUT the bytes to the URL LinkedIn gave; returns the URN."""
        request = {"initializeUploadRequest": {"owner": self.author}}
        response = self._call(
            "POST",
            "/rest/images",
            params={"action": "initializeUpload"},
            json=request,
            idempotent=True,
        )
        value = _http.json_object(response).get("value") or {}
        upload_url, urn = value.get("uploadUrl"), value.get("image")
        if not isinstance(upload_url, str) or not upload_url.startswith(("https://", "http://")):
            raise RetryableError("POST /rest/images: answer without an upload URL")
        headers: dict[str, str | None] = {"Content-Type": "application/octet-stream"}
        if not self._trusted(upload_url):
            headers["Authorization"] = None  # the token goes to LinkedIn hosts only
        timeout = self.context.timeout
        response = _http.send(
            self.session,
            "PUT",
            upload_url,
            timeout=timeout,
            idempotent=True,
            data=data,
            headers=headers,
        )
        self._raise_for(response, idempotent=True)
        return str(urn)

    def _latest_posts(self) -> list[dict[str, Any]]:
        """The author's latest posts (finder `author`, URN encoded in the query)."""
        params = {"author": self.author, "q": "author", "count": LOOKUP_COUNT}
        response = self._call(
            "GET",
            "/rest/posts",
            params=params,
            headers={"X-RestLi-Method": "FINDER"},
            idempotent=True,
            check=False,
        )
        if response.status_code == 403:
            raise PermanentError(
                f"GET /rest/posts: HTTP 403: {self._error_text(response)}; cannot tell whether"
                " the earlier attempt landed (reading posts needs r_organization_social, or the"
                " restricted r_member_social for members): check the profile by hand"
            )
        self._raise_for(response, idempotent=True)
        elements = _http.json_object(response).get("elements")
        return [e for e in elements if isinstance(e, dict)] if isinstance(elements, list) else []

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = False,
        versioned: bool = True,
        check: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """One API request; an error status raises its error kind unless `check` is off."""
        headers = {"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": "2.0.0"}
        headers = {**(headers if versioned else {}), **kwargs.pop("headers", {})}
        url = _http.join(self.api_base, path)
        timeout = self.context.timeout
        response = _http.send(
            self.session,
            method,
            url,
            timeout=timeout,
            idempotent=idempotent,
            headers=headers,
            **kwargs,
        )
        if check:
            self._raise_for(response, idempotent=idempotent)
        return response

    def _raise_for(self, response: requests.Response, *, idempotent: bool) -> None:
        """Map LinkedIn's error statuses and bodies to error kinds."""
        status = response.status_code
        if status < 400:
            return
        message = self._error_text(response)
        text = f"{_http.where(response)}: HTTP {status}: {message}"
        if status < 500 and ("DUPLICATE_POST" in message or "is a duplicate of" in message):
            raise DuplicateContent(text)
        if status == 403:  # a missing scope or page role refuses every post alike
            raise AuthExpired(f"{text} (the token may not post as {self.author})")
        if status == 426:
            raise AuthExpired(f"{text} (LinkedIn-Version {self.version} is no longer served)")
        if status == 429:
            raise RateLimited(text, retry_after=_rate_limit_wait(response.headers, message))
        _http.raise_for(response, message, idempotent=idempotent)

    def _error_text(self, response: requests.Response) -> str:
        """LinkedIn's message and error codes, without any echo of the token."""
        body = _http.json_or_empty(response)
        if not isinstance(body, dict):
            return ""
        message = _JAVA_PREFIX.sub("", str(body.get("message") or ""))
        inputs = (body.get("errorDetails") or {}).get("inputErrors") or []
        codes = [str(e["code"]) for e in inputs if isinstance(e, dict) and e.get("code")]
        codes += [str(body[k]) for k in ("code", "serviceErrorCode") if body.get(k)]
        text = message + (f" [{', '.join(codes)}]" if codes else "")
        return text.replace(self.token, "[redacted]")[:300]

    def _commentary(self, post: Post, link: str) -> str:
        """The rendered text in little format, within 3000 characters once escaped.

        Whether LinkedIn counts the escapes is not documented; counting them is the safe side.
        """
        budget = self.limits.max_chars
        while True:  # render raises PermanentError once the budget is too small for the link
            limits = dataclasses.replace(self.limits, max_chars=budget)
            text = to_little(render.render(post, self.context.text, limits, link=link))
            if len(text) <= self.limits.max_chars:
                return text
            # escaping at most doubles a character: shrink by half the overflow, not more
            budget -= (len(text) - self.limits.max_chars + 1) // 2

    def _plain(self, post: Post, template: str, max_chars: int) -> str:
        """One post field as plain text for the article card, shortened by the one renderer."""
        options = dataclasses.replace(self.context.text, template=template)
        return render.render(post, options, Limits(max_chars))

    def _trusted(self, url: str) -> bool:
        """Whether a URL LinkedIn handed us may receive the token: LinkedIn or the API host."""
        parts, api = urlsplit(url), urlsplit(self.api_base)
        if (parts.scheme, parts.netloc) == (api.scheme, api.netloc):
            return True
        host = parts.hostname or ""
        return parts.scheme == "https" and (
            host == "linkedin.com" or host.endswith(".linkedin.com")
        )

    def _expiry_details(self) -> list[str]:
        """A warning line when the configured token expiry is near or past."""
        if self.token_expires is None:
            return []
        left = self.token_expires - datetime.now(UTC)
        when = self.token_expires.date().isoformat()
        if left <= timedelta(0):
            return [f"access token expired on {when}: re-authorise and update access_token"]
        if left <= EXPIRY_WARNING:
            return [f"access token expires in {left.days} day(s), on {when}: re-authorise soon"]
        return [f"access token expires on {when}"]

    def _expiry(self, value: Any) -> datetime | None:
        """`token_expires` as an aware datetime: a TOML date or datetime, or an ISO string."""
        if value is None:
            return None
        when = value
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.options.invalid(
                    "token_expires", "must be a date such as 2027-01-31"
                ) from None
        elif isinstance(value, date) and not isinstance(value, datetime):
            when = datetime.combine(value, time.min)
        if not isinstance(when, datetime):
            raise self.options.invalid("token_expires", "must be a date such as 2027-01-31")
        return when if when.tzinfo else when.replace(tzinfo=UTC)


def _feed_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


def _normal(url: str) -> str:
    """A link without utm_* parameters or percent-encoding, to compare a posted link."""
    parts = urlsplit(unquote(url.strip()))
    query = [p for p in parts.query.split("&") if p and not unquote_plus(p).startswith("utm_")]
    return urlunsplit(parts._replace(query="&".join(query)))


def _rate_limit_wait(headers: Mapping[str, str], message: str) -> float | None:
    """Retry-After when sent; LinkedIn's daily limits reset at midnight UTC."""
    wait = _http.retry_after(headers)
    if wait is None and _DAILY.search(message):
        now = datetime.now(UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)
        wait = (midnight - now).total_seconds()
    return wait
