"""The content domain's arguments and answers: posts made of typed blocks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from favmcp.core.pagination import Page, PageParams
from favmcp.core.schema import Schema
from favmcp.core.times import UtcDateTime
from favmcp.domains.content.models import PostStatus
from favmcp.registry.spec import ConfirmInput, Preview, ToolInput, UpdateInput, WriteInput

MAX_BLOCKS = 200
PostId = Annotated[str, Field(min_length=1, max_length=40)]
Slug = Annotated[
    str, Field(min_length=1, max_length=120, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="a-z, 0-9, dashes.")
]
HttpsUrl = Annotated[str, Field(min_length=9, max_length=2000, pattern=r"^https://\S+$")]
Line = Annotated[str, Field(min_length=1, max_length=300)]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]


def _tag(value: str) -> str:
    return " ".join(value.lower().split())


TagText = Annotated[
    str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$"), AfterValidator(_tag)
]
Tags = Annotated[list[TagText], Field(max_length=20)]


class _Block(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Paragraph(_Block):
    type: Literal["paragraph"]
    text: Text


class Heading(_Block):
    type: Literal["heading"]
    text: Line
    level: int = Field(default=2, ge=2, le=4)


class Image(_Block):
    type: Literal["image"]
    url: HttpsUrl
    alt: str = Field(default="", max_length=300)


class Quote(_Block):
    type: Literal["quote"]
    text: Text
    cite: str | None = Field(default=None, max_length=300)


class CallToAction(_Block):
    type: Literal["call_to_action"]
    label: Line
    url: HttpsUrl


class BookingButton(_Block):
    type: Literal["booking_button"]
    label: Line
    service_id: str = Field(min_length=1, max_length=40, description="An active service.")


def _kind(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


# A tagged union on `type`, chosen by a function: the listed schema is a plain oneOf (no mapping to repeat).
Block = Annotated[
    Annotated[Paragraph, Tag("paragraph")]
    | Annotated[Heading, Tag("heading")]
    | Annotated[Image, Tag("image")]
    | Annotated[Quote, Tag("quote")]
    | Annotated[CallToAction, Tag("call_to_action")]
    | Annotated[BookingButton, Tag("booking_button")],
    Discriminator(_kind),
]
Blocks = Annotated[list[Block], Field(max_length=MAX_BLOCKS)]


class CreatePostInput(WriteInput):
    title: Line
    slug: Slug | None = Field(default=None, description="Made from the title when left out.")
    excerpt: str | None = Field(default=None, max_length=1000)
    blocks: Blocks = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)
    cover_image_url: HttpsUrl | None = None


class GetPostInput(ToolInput):
    post_id: PostId | None = None
    slug: str | None = Field(default=None, max_length=120, description="Instead of post_id.")

    @model_validator(mode="after")
    def _one(self) -> GetPostInput:
        if (self.post_id is None) == (self.slug is None):
            raise ValueError("give exactly one of post_id and slug")
        return self


class ListPostsInput(ToolInput, PageParams):
    status: PostStatus | None = None
    tag: TagText | None = None


class UpdatePostInput(UpdateInput):
    not_clearable = frozenset({"title", "slug", "blocks", "tags"})

    post_id: PostId
    title: Line | None = None
    slug: Slug | None = None
    excerpt: str | None = Field(default=None, max_length=1000)
    blocks: Blocks | None = None
    tags: Tags | None = None
    cover_image_url: HttpsUrl | None = None


class PublishPostInput(WriteInput):
    post_id: PostId
    publish_at: UtcDateTime | None = Field(default=None, description="A future time: scheduled. Left out: now.")


class PostIdInput(WriteInput):
    post_id: PostId


class DeletePostInput(ConfirmInput):
    post_id: PostId


class PostSummary(Schema):
    id: str
    slug: str
    title: str
    excerpt: str | None
    tags: list[str]
    cover_image_url: str | None
    status: PostStatus
    publish_at: datetime | None
    live: bool = Field(description="Visible on the public API now.")
    url: str | None = Field(description="The public URL, when the workspace has a handle.")
    version: int
    updated_at: datetime


class PostPublic(PostSummary):
    blocks: list[dict[str, Any]]


class PostPage(Page[PostSummary]):
    pass


class PostPreview(Preview):
    post_id: str


class PostDeleted(Schema):
    post_id: str
    slug: str
