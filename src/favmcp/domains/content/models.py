"""Posts: a headless blog's content, in typed blocks, with the states of domain-rules.md."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field

from favmcp.db.types import Table, enum_field, json_field, utc_field, workspace_fk


class PostStatus(StrEnum):
    draft = "draft"
    scheduled = "scheduled"  # published at publish_at (live once it has passed, judged at read time)
    published = "published"
    unpublished = "unpublished"


# A slug names one post that is or will be live: unique per workspace among scheduled and published posts (drafts
# may share a slug while they are written; publishing claims it).
LIVE = text("status IN ('scheduled', 'published')")


class Post(Table, table=True):
    """blocks is a list of Block dicts (see content.schemas); version counts saved changes (the public API's ETag
    is made of it)."""

    __tablename__ = "posts"
    __table_args__ = (
        Index("uq_posts_live_slug", "workspace_id", "slug", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        Index("ix_posts_workspace_keyset", "workspace_id", "id"),
        Index("ix_posts_workspace_publish", "workspace_id", "status", "publish_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = workspace_fk(index=False)
    slug: str = Field(max_length=120)
    title: str = Field(max_length=300)
    excerpt: str | None = Field(default=None, max_length=1000)
    blocks: list[dict[str, Any]] = json_field(list)
    tags: list[str] = json_field(list)
    cover_image_url: str | None = Field(default=None, max_length=2000)
    status: PostStatus = enum_field(PostStatus, PostStatus.draft)
    publish_at: datetime | None = utc_field(nullable=True)  # when it goes (or went) live
    unpublished_at: datetime | None = utc_field(nullable=True)
    author_user_id: str | None = Field(default=None, foreign_key="users.id", max_length=40)
    version: int = 1
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
