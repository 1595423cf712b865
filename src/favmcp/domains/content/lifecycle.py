"""The post lifecycle as data (domain-rules.md, Content).

draft -> scheduled | published; scheduled -> draft | published; published -> unpublished;
unpublished -> scheduled | published. A scheduled post is live once its publish_at has passed (judged at read time).
"""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.content.models import PostStatus

POST_LIFECYCLE = Lifecycle(
    entity="post",
    states=PostStatus,
    transitions={
        PostStatus.draft: {PostStatus.scheduled: "publish_post", PostStatus.published: "publish_post"},
        PostStatus.scheduled: {PostStatus.draft: "unpublish_post", PostStatus.published: "publish_post"},
        PostStatus.published: {PostStatus.unpublished: "unpublish_post"},
        PostStatus.unpublished: {PostStatus.scheduled: "publish_post", PostStatus.published: "publish_post"},
    },
    events={},
)
