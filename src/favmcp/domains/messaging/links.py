"""Messages are a customer's records: merge moves them, erase blanks their text, export includes them."""

from __future__ import annotations

from favmcp.core.links import MemberLink

MEMBER_LINKS: list[MemberLink] = []
