"""A typed async client for favmcp's REST API, generated from its OpenAPI document (see clients/README.md):

```python
async with Client("http://127.0.0.1:8765", api_key) as favmcp:
    member = await favmcp.create_member(name="Ada", idempotency_key="ada-1")
```
"""

from ._runtime import UNSET, FavmcpError, FieldError, PendingApproval, Unset
from .client import Client

__all__ = ["UNSET", "Client", "FavmcpError", "FieldError", "PendingApproval", "Unset"]
