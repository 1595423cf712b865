"""The base of every model that is not a table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """Validators, serializers and JSON Schemas are built on first use, not at import: a process that answers one
    tool (`favmcp call`) never pays for the other models, and a server's start does not wait for them."""

    model_config = ConfigDict(defer_build=True)
