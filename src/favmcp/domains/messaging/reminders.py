"""Booking reminders: a transactional template sent a set time before each booking, once."""

from __future__ import annotations

from favmcp.registry.domain import Job

JOBS: list[Job] = []
