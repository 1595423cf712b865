"""OAuth 2.1 for MCP clients: favmcp is its own authorization server, and /mcp the one protected resource.

The SDK's handlers speak the protocol (metadata, /authorize, /token, /register, /revoke); `provider.py` keeps clients,
grants and tokens in the database; `pages.py` is the sign-in and consent page a person sees in the browser.
"""
