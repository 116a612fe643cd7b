"""What a Mailchimp campaign is made of: its inline-styled HTML body and its send time.

Kept apart from the connector so both can be read (and tested) without any HTTP around them.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from syndicator.models import Image

QUARTER = 900  # seconds: Mailchimp schedules on :00, :15, :30 and :45 only
MIN_LEAD = timedelta(minutes=1)  # a schedule_time must still be in the future when it arrives
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DELAY = re.compile(r"(\d{1,4})\s*(m|h|d)")
_UNITS = {"m": 60, "h": 3600, "d": 86400}
_FONT = "font-family:Helvetica,Arial,sans-serif;"


@dataclass(frozen=True)
class Schedule:
    """`schedule_at`: the next "HH:MM" UTC, or a delay after publishing ("90m", "2h", "1d")."""

    rule: str
    clock: tuple[int, int] | None = None
    delay: timedelta | None = None

    @classmethod
    def parse(cls, rule: str) -> Schedule | None:
        """The schedule `rule` describes, or None when it is neither form."""
        rule = rule.strip()
        if match := _CLOCK.fullmatch(rule):
            return cls(rule, clock=(int(match[1]), int(match[2])))
        if match := _DELAY.fullmatch(rule):
            return cls(rule, delay=timedelta(seconds=int(match[1]) * _UNITS[match[2]]))
        return None

    def describe(self) -> str:
        """For the draft's notes: when the campaign will go out."""
        if self.clock:
            return f"scheduled for the next {self.rule} UTC (rounded up to a quarter hour)"
        return f"scheduled {self.rule} after publishing (rounded up to a quarter hour)"

    def time_after(self, now: datetime) -> datetime:
        """The send time: on a quarter hour and at least MIN_LEAD after `now`."""
        if self.clock:
            hour, minute = self.clock
            when = _round_up(now.replace(hour=hour, minute=minute, second=0, microsecond=0))
            while when < now + MIN_LEAD:
                when += timedelta(days=1)
            return when
        when = _round_up(now + (self.delay or timedelta()))
        return when if when >= now + MIN_LEAD else when + timedelta(seconds=QUARTER)


def _round_up(when: datetime) -> datetime:
    """`when` rounded up to the next :00, :15, :30 or :45 (unchanged when already on one)."""
    return datetime.fromtimestamp(math.ceil(when.timestamp() / QUARTER) * QUARTER, UTC)


def body(
    *,
    title: str,
    excerpt: str,
    link: str,
    read_more: str,
    image: Image | None,
    language: str | None,
) -> str:
    """The campaign HTML: title, first image, excerpt, a "Read more" button and the footer.

    Every value from the post is escaped, and Mailchimp merge tags in it are defused, so
    a post cannot inject markup or pull subscriber data into the email. The footer carries
    the unsubscribe link and address Mailchimp requires (else it appends its own).
    """
    rows = [
        f'<tr><td style="padding:24px 24px 8px;{_FONT}">'
        f'<h1 style="margin:0;font-size:24px;line-height:1.3;color:#222222;">{_text(title)}</h1>'
        "</td></tr>"
    ]
    if image:
        rows.append(
            '<tr><td style="padding:16px 24px 0;">'
            f'<img src="{_text(image.url)}" alt="{_text(image.alt)}" width="552" '
            'style="display:block;width:100%;max-width:552px;height:auto;border:0;">'
            "</td></tr>"
        )
    if excerpt:
        rows.append(
            f'<tr><td style="padding:16px 24px 0;{_FONT}font-size:16px;line-height:1.5;'
            f'color:#444444;"><p style="margin:0;">{_text(excerpt)}</p></td></tr>'
        )
    rows.append(
        '<tr><td style="padding:24px;">'
        f'<a href="{_text(link)}" style="display:inline-block;padding:12px 20px;'
        f"background:#1a73e8;color:#ffffff;text-decoration:none;border-radius:4px;{_FONT}"
        f'font-size:16px;">{_text(read_more)}</a></td></tr>'
    )
    lang = f' lang="{_text(language)}"' if language else ""
    return (
        f'<!DOCTYPE html>\n<html{lang}><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title></head>\n"
        '<body style="margin:0;padding:0;background:#f4f4f4;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="background:#f4f4f4;"><tr><td align="center" style="padding:24px 12px;">\n'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" '
        'style="width:100%;max-width:600px;background:#ffffff;border-radius:4px;">\n'
        + "\n".join(rows)
        + "\n</table>\n"
        f'<p style="margin:16px 0 0;{_FONT}font-size:12px;line-height:1.5;color:#888888;">'
        '*|HTML:LIST_ADDRESS_HTML|*<br><a href="*|UNSUB|*" style="color:#888888;">'
        "Unsubscribe</a></p>\n</td></tr></table>\n</body></html>\n"
    )


def _text(value: str) -> str:
    """HTML-escaped, with `*|` (a Mailchimp merge tag's start) made inert."""
    return html.escape(value, quote=True).replace("*|", "*&#124;")


def plain(value: str) -> str:
    """A subject or preview line with merge tags made inert (no entities work there)."""
    return value.replace("*|", "*\u200b|")
