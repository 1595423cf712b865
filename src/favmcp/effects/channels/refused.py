"""How a messaging provider's refusal reaches the outbox: `Refused` is `Undeliverable` (failed now, no retries), with
what the settling code needs to know: whether the provider refused our credentials (the channel is failing) or
the recipient for good (a bounce: the address is suppressed). Network errors and 5xx answers are ordinary
exceptions, which the outbox retries."""

from __future__ import annotations

from favmcp.effects.models import Undeliverable


class Refused(Undeliverable):
    def __init__(self, message: str, *, code: str | None = None, credentials: bool = False, bounce: bool = False):
        super().__init__(message)
        self.code = code
        self.credentials = credentials  # our key, token or password was refused
        self.bounce = bounce  # the recipient's address does not exist (permanent)


class ProviderUnavailable(Exception):
    """The provider answered 5xx or 429, or could not be reached: worth trying again later."""
