// A tour of the client against a running server: FAVMCP_URL (e.g. http://127.0.0.1:8765) and FAVMCP_API_KEY (an
// owner's key). Build and run: npm ci && npm run build && node dist/example.js

import { FavmcpClient, FavmcpError } from "./client.js";

const favmcp = new FavmcpClient({ baseUrl: process.env.FAVMCP_URL!, apiKey: process.env.FAVMCP_API_KEY });

const member = await favmcp.call("create_member", { name: "Ada Lovelace", email: `ada-${Date.now()}@example.com` });
const profile = await favmcp.call("get_member_profile", { member_id: member.id });
console.log(`member: ${profile.name} (${profile.id}) ${profile.status}`);

const leads = await favmcp.call("search_members", { lifecycle: "lead", limit: 50 });
console.log(`leads: ${leads.items.some((m) => m.id === member.id)}`);

try {
  await favmcp.call("create_member", { name: "" });
} catch (error) {
  if (!(error instanceof FavmcpError)) throw error;
  console.log(`refused: ${error.status} ${error.code} ${error.fieldErrors.map((e) => e.field).join(",")}`);
}

let token: string | null = null;
try {
  await favmcp.call("delete_member", { member_id: member.id });
} catch (error) {
  if (!(error instanceof FavmcpError)) throw error;
  token = error.confirmationToken;
  console.log(`asked: ${error.code}`);
}
const erased = await favmcp.call("delete_member", { member_id: member.id, confirmation_token: token! });
console.log(`erased: ${erased.status}`);
