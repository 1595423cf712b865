// The MCP TypeScript SDK's OAuth client against `favmcp serve --http`, driven by tests/test_oauth_typescript.py.
//
//   node oauth_flow.mjs <server /mcp URL> <redirect URI>
//
// Every step is a JSON line on stdout. The test plays the person: it reads the authorization URL, signs in and
// consents, and answers on stdin with the code; later it expires the access token on the server and says "expired".
// The SDK does the rest itself: discovery from the 401, dynamic registration, PKCE, the code exchange and the refresh.

import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [serverUrl, redirectUrl] = process.argv.slice(2);
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function emit(step, fields = {}) {
  process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
}

async function nextLine() {
  const line = await input.next();
  if (line.done) throw new Error('stdin closed before the test answered');
  return line.value.trim();
}

// What the SDK sent to the authorization server and the MCP endpoint, in order: the test checks that the SDK,
// not this script, registered, exchanged the code and refreshed.
const trace = [];

async function tracedFetch(url, init = {}) {
  const response = await fetch(url, init);
  const entry = { method: init.method ?? 'GET', path: new URL(url).pathname, status: response.status };
  if (entry.path === '/token') entry.grant_type = new URLSearchParams(init.body).get('grant_type');
  trace.push(entry);
  return response;
}

// The SDK's OAuthClientProvider, everything in memory. What saveTokens() and saveClientInformation() receive is kept
// unchanged (it carries the issuer the SDK binds credentials to).
class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.discovery = undefined;
    this.authorizations = 0;
  }

  get redirectUrl() {
    return redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'favmcp TypeScript SDK test',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    };
  }

  state() {
    return randomBytes(16).toString('base64url');
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(info) {
    this.client = info;
  }

  tokens() {
    return this.saved;
  }

  saveTokens(tokens) {
    this.saved = tokens;
  }

  redirectToAuthorization(url) {
    this.authorizations += 1;
    emit('authorize', { url: url.href });
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }

  saveDiscoveryState(state) {
    this.discovery = state;
  }

  discoveryState() {
    return this.discovery;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }
}

const provider = new MemoryProvider();
const transportOptions = { authProvider: provider, fetch: tracedFetch };

function tokenFields() {
  return { access_token: provider.saved?.access_token, refresh_token: provider.saved?.refresh_token };
}

async function tool(client, name) {
  const result = await client.callTool({ name, arguments: {} });
  return { is_error: result.isError ?? false, structured: result.structuredContent ?? null };
}

async function main() {
  // Without a token the server answers 401: the SDK discovers, registers and asks for the person's consent.
  const first = new Client({ name: 'favmcp-oauth-typescript', version: '1.0.0' });
  try {
    await first.connect(new StreamableHTTPClientTransport(new URL(serverUrl), transportOptions));
    throw new Error('connected without authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  const code = await nextLine();
  const finishing = new StreamableHTTPClientTransport(new URL(serverUrl), transportOptions);
  await finishing.finishAuth(code);
  emit('registered', {
    client_id: provider.client?.client_id,
    has_secret: Boolean(provider.client?.client_secret),
    token_endpoint_auth_method: provider.client?.token_endpoint_auth_method ?? null,
  });

  const client = new Client({ name: 'favmcp-oauth-typescript', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), transportOptions));
  emit('signed_in', {
    whoami: await tool(client, 'whoami'),
    members: await tool(client, 'list_team_members'),
    ...tokenFields(),
    trace: trace.splice(0),
  });
  const original = provider.saved;

  // The test has expired the access token on the server: the next call is refused, the SDK refreshes on that 401
  // and sends the call again.
  if ((await nextLine()) !== 'expired') throw new Error('expected "expired"');
  emit('refreshed', {
    whoami: await tool(client, 'whoami'),
    members: await tool(client, 'list_team_members'),
    ...tokenFields(),
    trace: trace.splice(0),
  });

  // A copy of the first refresh token presented again: deliberate misuse, so spoken by hand with the client's own
  // credentials, as its registration said to send them.
  const registered = provider.client;
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: original.refresh_token });
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (registered.token_endpoint_auth_method === 'client_secret_basic') {
    const pair = `${encodeURIComponent(registered.client_id)}:${encodeURIComponent(registered.client_secret)}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  } else {
    form.set('client_id', registered.client_id);
    if (registered.client_secret) form.set('client_secret', registered.client_secret);
  }
  const tokenUrl = new URL('/token', serverUrl);
  const reused = await fetch(tokenUrl, { method: 'POST', headers, body: form });
  emit('reused', { status: reused.status, body: await reused.json() });

  // The current access token, the one the SDK got from its refresh, is refused with the family.
  const current = provider.saved.access_token;
  const probe = await fetch(serverUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${current}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '1' } },
    }),
  });
  await probe.body?.cancel();
  emit('refused', { status: probe.status, www_authenticate: probe.headers.get('www-authenticate') });

  // And the SDK's own next call: its refresh is refused too, so it drops the tokens and asks the person again.
  const before = provider.authorizations;
  let outcome;
  try {
    await tool(client, 'whoami');
    outcome = { error: null };
  } catch (error) {
    outcome = { error: error.constructor.name, message: String(error.message) };
  }
  emit('after_reuse', {
    ...outcome,
    asked_again: provider.authorizations > before,
    tokens_dropped: provider.saved === undefined,
    trace: trace.splice(0),
  });
  await client.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    emit('error', { error: error?.constructor?.name ?? 'Error', message: String(error?.stack ?? error) });
    process.exit(1);
  },
);
