"""(being written)"""

from __future__ import annotations

from favmcp.core.links import MemberLink

MEMBER_LINKS: list[MemberLink] = []
