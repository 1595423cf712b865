// A fetch client for favmcp's REST API, typed by types.ts (generated from docs/openapi.json). Written by hand: what
// every operation shares. See clients/README.md.

import { routes } from "./routes.js";
import type { Operations } from "./types.js";

export type * from "./types.js";

export type OperationName = keyof Operations;
export type Args<N extends OperationName> = Operations[N]["args"];
/** What a call answers: the tool's result, or PendingApproval for a send an approval holds (202). */
export type Answer<N extends OperationName> = Operations[N]["pending"] extends true
  ? Operations[N]["result"] | PendingApproval
  : Operations[N]["result"];

/** A send the workspace's approval policy holds: nothing is sent until a person approves approvalId. */
export class PendingApproval {
  readonly status = "pending_approval";
  constructor(
    readonly approvalId: string,
    readonly location: string | null,
    readonly answer: Record<string, unknown>,
  ) {}
}

export interface FieldError {
  field: string;
  message: string;
}

/** A refusal: the RFC 9457 problem's favmcp error object, and the HTTP status. */
export class FavmcpError extends Error {
  readonly code: string;
  readonly fieldErrors: FieldError[];
  readonly hint: string | null;
  readonly details: Record<string, unknown>;
  readonly requestId: string | null;
  readonly retryable: boolean;
  /** Seconds to wait, for rate_limited (429). */
  readonly retryAfter: number | null;

  constructor(
    readonly status: number,
    readonly problem: Record<string, unknown>,
  ) {
    super(String(problem.detail ?? problem.title ?? `HTTP ${status}`));
    this.name = "FavmcpError";
    this.code = String(problem.code ?? "internal_error");
    this.fieldErrors = Array.isArray(problem.field_errors) ? (problem.field_errors as FieldError[]) : [];
    this.hint = typeof problem.hint === "string" ? problem.hint : null;
    this.details = (problem.details as Record<string, unknown> | undefined) ?? {};
    this.requestId = typeof problem.request_id === "string" ? problem.request_id : null;
    this.retryable = problem.retryable === true;
    this.retryAfter = typeof problem.retry_after === "number" ? problem.retry_after : null;
  }

  /** For confirmation_required: the token to repeat the same call with, once the preview is approved. */
  get confirmationToken(): string | null {
    const token = this.details.confirmation_token;
    return typeof token === "string" ? token : null;
  }
}

export interface ClientOptions {
  /** The server, e.g. http://127.0.0.1:8765. */
  baseUrl: string;
  /** A fav_mcp_ key; none for the public tools. */
  apiKey?: string;
  fetch?: typeof fetch;
}

// Arguments that travel as headers, so that a body or query never carries them twice.
const HEADERS: Record<string, string> = {
  idempotency_key: "Idempotency-Key",
  confirmation_token: "Confirmation-Token",
};

export class FavmcpClient {
  private readonly baseUrl: string;
  private readonly apiKey?: string;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /**
   * Runs one operation (a tool, by its name): path arguments go into the path, idempotency_key and
   * confirmation_token into their headers, the rest into the query (GET, DELETE) or the JSON body. Arguments left
   * out (undefined) are not sent. A refusal throws FavmcpError.
   */
  async call<N extends OperationName>(
    name: N,
    ...[args]: {} extends Args<N> ? [args?: Args<N>] : [args: Args<N>]
  ): Promise<Answer<N>> {
    const [method, template] = routes[name];
    const given = Object.entries((args ?? {}) as Record<string, unknown>).filter(([, v]) => v !== undefined);
    const inPath = new Set<string>();
    const path = template.replace(/\{(\w+)\}/g, (_, key: string) => {
      inPath.add(key);
      return encodeURIComponent(String((args as Record<string, unknown>)[key]));
    });
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    const rest: Record<string, unknown> = {};
    for (const [key, value] of given) {
      if (key in HEADERS) headers[HEADERS[key]] = String(value);
      else if (!inPath.has(key)) rest[key] = value;
    }
    const url = new URL(this.baseUrl + path);
    let body: string | undefined;
    if (method === "GET" || method === "DELETE") {
      for (const [key, value] of Object.entries(rest)) {
        for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(item));
      }
    } else {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(rest);
    }
    const response = await this.fetch(url, { method, headers, body });
    const text = await response.text();
    const answer = parse(text);
    if (response.status === 202 && answer) {
      const held = new PendingApproval(String(answer.approval_id ?? ""), response.headers.get("location"), answer);
      return held as unknown as Answer<N>;
    }
    if (!response.ok) {
      const problem = answer && "code" in answer ? answer : { code: "internal_error", detail: text.slice(0, 500) };
      if (response.status === 429 && problem.retry_after == null) {
        const retry = Number(response.headers.get("retry-after"));
        if (Number.isInteger(retry)) problem.retry_after = retry;
      }
      throw new FavmcpError(response.status, problem);
    }
    return answer as unknown as Answer<N>;
  }
}

function parse(text: string): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
