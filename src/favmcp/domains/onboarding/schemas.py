from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from favmcp.core.contact import normalise_email
from favmcp.core.money import CurrencyCode
from favmcp.core.schema import Schema
from favmcp.domains.workspace.schemas import CountryCode, TimezoneName
from favmcp.registry.spec import WriteInput

Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
Code = Annotated[str, Field(pattern=r"^\d{6}$", description="The code from the email.")]


class RegisterOrganisationRequestInput(WriteInput):
    email: Email
    organisation_name: str = Field(min_length=1, max_length=200)
    owner_name: str = Field(min_length=1, max_length=200)
    industry: str | None = Field(default=None, max_length=80, description="e.g. yoga studio, salon, clinic")
    country: CountryCode | None = None
    timezone: TimezoneName = "UTC"
    currency: CurrencyCode = "EUR"


class CodeRequested(Schema):
    request_id: str = Field(description="Pass to the matching *_verify tool with the code.")
    expires_at: datetime
    email_masked: str
    message: str


class VerifyInput(WriteInput):
    request_id: str = Field(min_length=1, max_length=40)
    code: Code


class NewKeyResult(Schema):
    workspace_id: str
    user_id: str
    role: str
    key_id: str
    api_key: str = Field(description="The secret, shown this once. Store it now; it cannot be shown again.")
    scopes: list[str]
    message: str


class AcceptInviteRequestInput(WriteInput):
    invite_token: str = Field(min_length=20, max_length=200)
