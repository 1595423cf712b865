// Call favmcp with the official MCP TypeScript SDK over streamable HTTP.
//
//   FAVMCP_API_KEY=fav_mcp_... FAVMCP_URL=http://127.0.0.1:8765/mcp node dist/client.js

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

type Answer = { ok: true; data: Record<string, any> } | { ok: false; error: Record<string, any> };

const url = new URL(process.env.FAVMCP_URL ?? "http://127.0.0.1:8765/mcp");
const key = process.env.FAVMCP_API_KEY;
if (!key) {
  console.error("Set FAVMCP_API_KEY to a favmcp key (fav_mcp_...): `favmcp demo` prints one.");
  process.exit(2);
}

const transport = new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: "favmcp-typescript-example", version: "1.0.0" });
await client.connect(transport);

// A refusal is a result with isError whose one text block is favmcp's error object (code, message, hint,
// field_errors, details); a success carries structuredContent.
async function call(name: string, args: Record<string, unknown>): Promise<Answer> {
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) {
    const [block] = result.content as { type: string; text: string }[];
    return { ok: false, error: JSON.parse(block.text) };
  }
  return { ok: true, data: result.structuredContent as Record<string, any> };
}

function expectOk(name: string, answer: Answer): Record<string, any> {
  if (!answer.ok) {
    throw new Error(`${name} refused: ${answer.error.code}: ${answer.error.message}`);
  }
  return answer.data;
}

const { tools } = await client.listTools();
const destructive = tools.filter((tool) => tool.annotations?.destructiveHint).length;
console.log(`tools: ${tools.length} listed, ${destructive} of them destructive`);

const me = expectOk("whoami", await call("whoami", {}));
console.log(`whoami: ${me.role} of ${me.workspace_name} (${me.workspace_id}), key ${me.key_id}`);

const found = expectOk("search_tools", await call("search_tools", { query: "cancel a booking", limit: 3 }));
console.log(`search_tools "cancel a booking": ${found.items.map((tool: { name: string }) => tool.name).join(", ")}`);

// A destructive tool's first call changes nothing: it answers confirmation_required with a preview of what would
// happen and a single-use token. Show the preview to the person; only if they agree, call again with the token.
const gate = await call("revoke_api_key", { key_id: me.key_id });
if (gate.ok || gate.error.code !== "confirmation_required") {
  throw new Error(`revoke_api_key should ask first: ${JSON.stringify(gate)}`);
}
console.log(`revoke_api_key: ${gate.error.code}: ${gate.error.message}`);
console.log(`preview: ${JSON.stringify(gate.error.details.preview, null, 2)}`);
console.log("not confirmed: the token goes unused and the key stays active");

await client.close();
