"""Mailchimp: one regular campaign per post to an audience, through the Marketing API 3.0.

A campaign is created, filled, then left as a draft, scheduled or sent. Mailchimp has no
idempotency key, so the campaign's internal title carries the delivery key: a later
attempt finds the campaign an earlier one created and finishes its remaining steps
instead of creating a second one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from html import escape
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from connectors import _http
from connectors._mailchimp_content import Schedule, body, plain
from connectors._options import Options
from syndicator import render
from syndicator.connector import ConnectorContext, Limits
from syndicator.errors import (
    AuthExpired,
    ConfigError,
    ConnectorError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
)
from syndicator.models import AccountInfo, Draft, Post, Receipt, utcnow

log = logging.getLogger(__name__)

ACTIONS = ("draft", "schedule", "send")
SUBJECT_MAX = 150
PREVIEW_MAX = 150
EXCERPT_MAX = 600
RATE_LIMIT_PAUSE = 60.0  # a 429 means too many concurrent connections: it clears quickly
SEARCHED = 50  # latest campaigns searched for one created by an earlier attempt
_DATACENTER = re.compile(r"[a-z]+\d+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_CAMPAIGN_FIELDS = (
    "campaigns.id,campaigns.status,campaigns.settings.title,"
    "campaigns.archive_url,campaigns.long_archive_url"
)


class Mailchimp:
    """A Mailchimp audience. Options: api_key, api_base, list_id, segment_id, subject,
    from_name, reply_to, action, schedule_at, read_more."""

    name: ClassVar[str] = "mailchimp"
    limits: ClassVar[Limits] = Limits(SUBJECT_MAX, "chars", max_images=1)
    secret_keys: ClassVar[tuple[str, ...]] = ("api_key",)
    can_lookup: ClassVar[bool] = True
    option_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "action",
            "api_base",
            "api_key",
            "from_name",
            "list_id",
            "read_more",
            "reply_to",
            "schedule_at",
            "segment_id",
            "subject",
        }
    )
    clock: Callable[[], datetime] = staticmethod(utcnow)

    def __init__(self, options: Mapping[str, Any], context: ConnectorContext) -> None:
        """Validate options (ConfigError naming the key); no I/O."""
        self.context = context
        opts = Options(options, target=context.target, platform=self.name)
        self.api_key = opts.string("api_key", required=True).strip()
        suffix = self.api_key.rpartition("-")[2]
        self.datacenter = suffix if "-" in self.api_key and _DATACENTER.fullmatch(suffix) else ""
        if not self.datacenter and "api_base" not in options:
            raise opts.invalid("api_key", "must end with its datacenter, such as -us21")
        default = f"https://{self.datacenter or 'us1'}.api.mailchimp.com/3.0"
        self.api_base = opts.api_base(default)
        self.list_id = opts.string("list_id", required=True).strip()
        self.segment_id = _segment(options.get("segment_id"), opts)
        self.subject = opts.string("subject") or "{title}"
        try:
            render.validate_template(self.subject)
        except ConfigError as exc:
            raise opts.invalid("subject", str(exc)) from None
        if "\n" in self.subject:
            raise opts.invalid("subject", "must be one line")
        self.from_name = opts.string("from_name", required=True).strip()
        self.reply_to = opts.string("reply_to", required=True).strip()
        if not _EMAIL.fullmatch(self.reply_to):
            raise opts.invalid("reply_to", "must be an email address such as news@example.com")
        self.action = opts.choice("action", ACTIONS)
        self.schedule = self._schedule(opts.string("schedule_at"), opts)
        self.read_more = opts.string("read_more") or "Read more"
        self.session = _http.make_session(context.user_agent)
        self.session.auth = ("syndicator", self.api_key)

    def prepare(self, post: Post) -> Draft:
        """Subject, preview text and the campaign HTML in `fields`; a one-line summary as text."""
        text = self.context.text
        subject = render.render(
            post, replace(text, template=self.subject), Limits(SUBJECT_MAX), link=post.url
        )
        link = render.with_utm(
            post.url, {"utm_source": "mailchimp", "utm_medium": "email", **text.utm}
        )
        excerpt = render.render(post, replace(text, template="{summary}"), Limits(EXCERPT_MAX))
        preview = render.render(post, replace(text, template="{summary}"), Limits(PREVIEW_MAX))
        images = tuple(i for i in post.images[:1] if i.url.startswith(("https://", "http://")))
        title = render.render(post, replace(text, template="{title}"), Limits(1000))
        fields: dict[str, Any] = {
            "subject": plain(subject),
            "preview_text": plain(preview),
            "html": body(
                title=title,
                excerpt=excerpt,
                link=link,
                read_more=self.read_more,
                image=images[0] if images else None,
                language=post.language,
            ),
            "list_id": self.list_id,
            "action": self.action,
        }
        if self.segment_id is not None:
            fields["segment_id"] = self.segment_id
        notes: tuple[str, ...] = ()
        if self.schedule:
            fields["schedule_at"] = self.schedule.rule
            notes = (self.schedule.describe(),)
        segment = f" (segment {self.segment_id})" if self.segment_id is not None else ""
        summary = f"Campaign ({self.action}) to audience {self.list_id}{segment}: {subject}"
        return Draft(text=summary, link=link, images=images, fields=fields, notes=notes)

    def publish(self, draft: Draft, *, key: str) -> Receipt:
        """Find or create the key's campaign, set its content, then draft, schedule or send it."""
        campaign = self._find(key) or self._create(draft, key)
        campaign_id = str(campaign["id"])
        if campaign.get("status", "save") == "save":  # not yet scheduled or sent
            path = f"/campaigns/{quote(campaign_id, safe='')}"
            self._call("PUT", f"{path}/content", json={"html": draft.fields["html"]})
            action = draft.fields.get("action", self.action)
            if action == "schedule":
                when = self._send_time(draft).isoformat()
                self._act(campaign_id, "schedule", {"schedule_time": when})
            elif action == "send":
                self._act(campaign_id, "send", None)
            log.info(
                "target %s: campaign %s done: %s (key %s)",
                self.context.target,
                campaign_id,
                action,
                key,
            )
        return _receipt(campaign)

    def lookup(self, draft: Draft, *, key: str) -> Receipt | None:
        """The key's campaign once it is complete; None while `publish` still has steps to do."""
        campaign = self._find(key)
        if campaign is None:
            return None
        if not self._complete(campaign, draft):
            return None
        log.info("target %s: key %s found as campaign %s", self.context.target, key, campaign["id"])
        return _receipt(campaign)

    def check(self) -> AccountInfo:
        """The API answers, and the audience (with its size) exists."""
        self._call("GET", "/ping")
        path = f"/lists/{quote(self.list_id, safe='')}"
        audience = _http.json_object(self._call("GET", path), "name")
        members = (audience.get("stats") or {}).get("member_count")
        details = [f"{members} subscribed members", f"action: {self.action}"]
        details.append(f"datacenter {self.datacenter}" if self.datacenter else self.api_base)
        if self.segment_id is not None:
            segment = _http.json_object(self._call("GET", f"{path}/segments/{self.segment_id}"))
            details.append(f"segment {segment.get('name')}: {segment.get('member_count')} members")
        return AccountInfo(account=str(audience["name"]), details=tuple(details))

    def _find(self, key: str) -> dict[str, Any] | None:
        """The campaign an earlier attempt with this key created, among the latest ones."""
        params = {
            "count": SEARCHED,
            "sort_field": "create_time",
            "sort_dir": "DESC",
            "fields": _CAMPAIGN_FIELDS,
        }
        found = _http.json_object(self._call("GET", "/campaigns", params=params), "campaigns")
        for campaign in found["campaigns"] if isinstance(found["campaigns"], list) else []:
            settings = campaign.get("settings") if isinstance(campaign, dict) else None
            if (
                isinstance(settings, dict)
                and settings.get("title") == _title(key)
                and "id" in campaign
            ):
                return campaign
        return None

    def _create(self, draft: Draft, key: str) -> dict[str, Any]:
        """POST /campaigns; a lost answer is OutcomeUnknown: the lookup will find the campaign."""
        recipients: dict[str, Any] = {"list_id": draft.fields.get("list_id", self.list_id)}
        segment = draft.fields.get("segment_id", self.segment_id)
        if segment is not None:
            recipients["segment_opts"] = {"saved_segment_id": segment}
        settings = {
            "subject_line": draft.fields["subject"],
            "title": _title(key),
            "from_name": self.from_name,
            "reply_to": self.reply_to,
        }
        if draft.fields.get("preview_text"):
            settings["preview_text"] = draft.fields["preview_text"]
        payload = {"type": "regular", "recipients": recipients, "settings": settings}
        response = self._call("POST", "/campaigns", json=payload, idempotent=False)
        return _http.json_object(response, "id", kind=OutcomeUnknown)

    def _act(self, campaign_id: str, action: str, payload: dict[str, Any] | None) -> None:
        """Schedule or send; a rejection lists the send checklist's errors.

        Safe to repeat: Mailchimp never schedules or sends one campaign twice, and the next
        attempt sees the campaign's new status before acting.
        """
        path = f"/campaigns/{quote(campaign_id, safe='')}"
        try:
            self._call("POST", f"{path}/actions/{action}", json=payload)
        except PermanentError as exc:
            problems = self._checklist(path)
            raise PermanentError(
                f"{exc}{problems}; campaign {campaign_id} is kept as a draft in Mailchimp"
            ) from None

    def _send_time(self, draft: Draft) -> datetime:
        """When a scheduled campaign goes out, by the rule the draft was made with."""
        schedule = Schedule.parse(str(draft.fields.get("schedule_at") or ""))
        return (schedule or self.schedule or Schedule("0m")).time_after(self.clock())

    def _checklist(self, path: str) -> str:
        """ "; checklist: …" from the campaign's send checklist errors; "" when unavailable."""
        try:
            found = _http.json_object(self._call("GET", f"{path}/send-checklist"), "items")
        except ConnectorError:
            return ""
        items = found["items"] if isinstance(found["items"], list) else []
        errors = [
            f"{i.get('heading', '')}: {i.get('details', '')}".strip(": ")
            for i in items
            if isinstance(i, dict) and i.get("type") == "error"
        ]
        return f"; checklist: {'; '.join(errors)}" if errors else ""

    def _complete(self, campaign: dict[str, Any], draft: Draft) -> bool:
        """Scheduled or sent, or, for action "draft", holding our content ("Read more" link)."""
        if campaign.get("status", "save") != "save":
            return True
        if draft.fields.get("action", self.action) != "draft" or not draft.link:
            return False
        path = f"/campaigns/{quote(str(campaign['id']), safe='')}/content"
        content = _http.json_object(self._call("GET", path, params={"fields": "html"}))
        html = content.get("html")
        return isinstance(html, str) and escape(draft.link, quote=True) in html

    def _call(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> requests.Response:
        """One request; Mailchimp problem details mapped to error kinds, the key kept out."""
        url = _http.join(self.api_base, path)
        response = _http.send(
            self.session,
            method,
            url,
            timeout=self.context.timeout,
            idempotent=idempotent,
            **kwargs,
        )
        status = response.status_code
        if status < 400:
            return response
        problem = _http.json_or_empty(response)
        message = _problem(problem).replace(self.api_key, "[redacted]")[:500]
        text = f"{_http.describe(method, url)}: HTTP {status}: {message}"
        title = str(problem.get("title", "")) if isinstance(problem, dict) else ""
        if status == 403 or "API Key" in title or "compliance" in message.lower():
            raise AuthExpired(text)  # invalid key, wrong datacenter, disabled or held account
        if status == 429:
            raise RateLimited(
                text, retry_after=_http.retry_after(response.headers) or RATE_LIMIT_PAUSE
            )
        _http.raise_for(response, message, idempotent=idempotent)
        return response

    def _schedule(self, rule: str, opts: Options) -> Schedule | None:
        """`schedule_at`, required with action "schedule" and meaningless without it."""
        if self.action != "schedule":
            if rule:
                raise opts.invalid("schedule_at", 'is only used with action = "schedule"')
            return None
        schedule = Schedule.parse(rule)
        if schedule is None:
            raise opts.invalid(
                "schedule_at", 'must be "HH:MM" (UTC) or a delay such as "90m", "2h" or "1d"'
            )
        return schedule


def _segment(value: Any, opts: Options) -> int | None:
    """A saved segment's numeric id, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if type(value) is int and value > 0:
        return value
    raise opts.invalid("segment_id", "must be a saved segment's numeric id")


def _title(key: str) -> str:
    """The campaign's internal name; it carries the delivery key so retries can find it."""
    return f"syndicator {key}"


def _receipt(campaign: dict[str, Any]) -> Receipt:
    """The campaign id and its public archive page, when Mailchimp gave one."""
    url = campaign.get("archive_url") or campaign.get("long_archive_url") or None
    return Receipt(remote_id=str(campaign["id"]), url=url)


def _problem(problem: Any) -> str:
    """ "title: detail; field: message; …" from a problem+json body (errors included)."""
    if not isinstance(problem, dict):
        return ""
    parts = [str(problem.get(k) or "").strip() for k in ("title", "detail")]
    text = ": ".join(dict.fromkeys(p for p in parts if p))
    errors = problem.get("errors")
    listed = [
        ": ".join(str(e.get(k)) for k in ("field", "message") if e.get(k))
        for e in (errors if isinstance(errors, list) else [])
        if isinstance(e, dict)
    ]
    return "; ".join([text, *(e for e in listed if e)]).strip("; ")
