"""Every table, imported in one place so migrations and tests see the whole schema."""

from sqlmodel import SQLModel

from favmcp.auth import models as auth_models
from favmcp.db import tenancy as workspace_models
from favmcp.domains.members import models as members_models
from favmcp.domains.team import models as team_models
from favmcp.effects import models as effects_models
from favmcp.registry import models as registry_models

MODULES = (workspace_models, auth_models, team_models, members_models, registry_models, effects_models)
metadata = SQLModel.metadata
