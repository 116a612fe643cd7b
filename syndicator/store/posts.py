"""Posts: insert-or-ignore by (feed, guid), edits, fan-out bookkeeping."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from syndicator.models import Post
from syndicator.schema import posts, short_links
from syndicator.store.base import StoreBase

log = logging.getLogger(__name__)


class PostsMixin(StoreBase):
    """Posts as seen in the feeds."""

    def add_post(self, post: Post, now: datetime, *, publish: bool) -> tuple[int, str, bool]:
        """Insert-or-ignore a post. Returns (id, "new" | "edited" | "same", needs fan-out).

        A post stored with `publish` keeps needing fan-out until `mark_fanned_out`, so a
        crash between storing a post and creating its deliveries loses nothing.
        """
        select = sa.select(posts.c.id, posts.c.content_hash, posts.c.fanned_out).where(
            posts.c.feed == post.feed, posts.c.guid == post.guid
        )
        with self._write() as conn:
            row = conn.execute(select).first()
            if row is None:
                values = self._post_values(post, now)
                try:
                    with conn.begin_nested():
                        result = conn.execute(
                            sa.insert(posts).values(**values, fanned_out=not publish)
                        )
                    return self._inserted_id(result), "new", publish
                except IntegrityError:  # another daemon stored it first
                    row = conn.execute(select).one()
            if row.content_hash == post.content_hash:
                return row.id, "same", not row.fanned_out
            values = self._post_values(post, now)
            del values["first_seen_at"]
            if not (post.published or post.updated):
                del values["published_at"]  # an undated post keeps the date it was first seen
            conn.execute(
                sa.update(posts)
                .where(posts.c.id == row.id)
                .values(**values, edits=posts.c.edits + 1)
            )
            return row.id, "edited", not row.fanned_out

    def mark_fanned_out(self, post_id: int) -> None:
        """Every delivery of this post exists now."""
        with self._write() as conn:
            conn.execute(sa.update(posts).where(posts.c.id == post_id).values(fanned_out=True))

    @staticmethod
    def _post_values(post: Post, now: datetime) -> dict[str, Any]:
        return {
            "feed": post.feed,
            "guid": post.guid,
            "url": post.url,
            "title": post.title,
            "content_hash": post.content_hash,
            "data": post.to_dict(),
            "published_at": post.published or post.updated or now,  # undated: first seen
            "first_seen_at": now,
            "updated_at": now,
        }

    def post(self, post_id: int) -> Post:
        with self._read() as conn:
            data = conn.execute(sa.select(posts.c.data).where(posts.c.id == post_id)).scalar_one()
        return Post.from_dict(data)

    def find_posts(self, guid: str) -> list[int]:
        """Ids of posts whose guid or URL is `guid` (the CLI accepts either)."""
        with self._read() as conn:
            query = sa.select(posts.c.id).where(sa.or_(posts.c.guid == guid, posts.c.url == guid))
            return list(conn.execute(query).scalars())

    def posts_to_fan_out(self, feed: str) -> list[tuple[int, Post]]:
        """Posts of a feed whose deliveries are not all created yet."""
        with self._read() as conn:
            query = sa.select(posts.c.id, posts.c.data).where(
                posts.c.feed == feed, posts.c.fanned_out.is_(False)
            )
            return [(row.id, Post.from_dict(row.data)) for row in conn.execute(query)]

    def short_link(self, post_id: int, target: str) -> str | None:
        """The short link made for this (post, target), if any."""
        with self._read() as conn:
            query = sa.select(short_links.c.short_url).where(
                short_links.c.post_id == post_id, short_links.c.target == target
            )
            return conn.execute(query).scalar()

    def save_short_link(
        self, post_id: int, target: str, long_url: str, short_url: str, now: datetime
    ) -> str:
        """Insert-or-ignore; returns the link stored first (another daemon may have won)."""
        with self._write() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(short_links).values(
                            post_id=post_id,
                            target=target,
                            long_url=long_url,
                            short_url=short_url,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                pass
            query = sa.select(short_links.c.short_url).where(
                short_links.c.post_id == post_id, short_links.c.target == target
            )
            return str(conn.execute(query).scalar_one())
