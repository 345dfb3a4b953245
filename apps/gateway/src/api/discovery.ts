import type { JsonSchema } from './openapi.js';
import type { ToolSummary } from './llms-txt.js';

/**
 * What a newcomer (a person or an agent) finds at the root of the gateway: the service index
 * the public services answer at `/`, the agent card at `/.well-known/agent.json`, and a short
 * HTML page for a browser. All built from the OpenAPI document, so they list the real routes.
 */

export const SERVICE_NAME = 'agent-marketplace';

export const DOC_LINKS = {
  openapi: '/openapi.json',
  html: '/docs',
  llms_txt: '/llms.txt',
  agent_card: '/.well-known/agent.json',
  dashboard: '/dashboard',
  mcp: '/mcp',
} as const;

interface Operations {
  paths?: Record<string, Record<string, { summary?: string }>>;
  info?: { description?: string };
}

/** `{"POST /escrow/create": "Lock money for a job", …}` in the document's order. */
export function endpointIndex(document: JsonSchema): Record<string, string> {
  const index: Record<string, string> = {};
  for (const [path, methods] of Object.entries((document as Operations).paths ?? {}))
    for (const [method, operation] of Object.entries(methods))
      index[`${method.toUpperCase()} ${path}`] = operation.summary ?? '';
  return index;
}

/** `GET /` for a JSON client: the same keys as the public services' index. */
export function serviceIndex(document: JsonSchema, version: string): Record<string, unknown> {
  return {
    service: SERVICE_NAME,
    version,
    description: (document as Operations).info?.description ?? '',
    endpoints: endpointIndex(document),
    docs: DOC_LINKS,
    auth: {
      type: 'bearer',
      header: 'Authorization: Bearer <api_key>',
      get_a_key: 'POST /api/v1/auth/register',
      operator: 'Authorization: Bearer <ADMIN_API_KEY> on /admin routes',
    },
    mcp: { transport: 'streamable-http', endpoint: DOC_LINKS.mcp },
  };
}

/** `/.well-known/agent.json`: the service and its MCP endpoint, for agents that discover tools. */
export function agentCard(options: {
  baseUrl: string;
  version: string;
  description: string;
  tools: readonly ToolSummary[];
}): Record<string, unknown> {
  const { baseUrl, version, description, tools } = options;
  return {
    name: SERVICE_NAME,
    description,
    version,
    url: baseUrl,
    documentation_url: `${baseUrl}${DOC_LINKS.llms_txt}`,
    openapi_url: `${baseUrl}${DOC_LINKS.openapi}`,
    authentication: { schemes: ['bearer'], register: `${baseUrl}/api/v1/auth/register` },
    capabilities: { mcp: true, rest: true, server_sent_events: true },
    mcp: { transport: 'streamable-http', url: `${baseUrl}${DOC_LINKS.mcp}` },
    skills: tools.map((tool) => ({ id: tool.name, name: tool.name, description: tool.description })),
  };
}

/** `GET /` for a browser: static, no script, so the CSP can forbid everything but its style. */
export const LANDING_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

export function landingPageHtml(version: string): string {
  const escapedVersion = version.replace(/[^0-9A-Za-z.+-]/g, '');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent marketplace</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:720px;margin:40px auto;padding:0 16px;color:#1d1d1f}
code,pre{background:#f3f1f7;border-radius:4px}pre{padding:10px}code{padding:1px 4px}h1{color:#2d1b4e}li{margin:4px 0}</style>
</head><body>
<h1>Agent marketplace <small>${escapedVersion}</small></h1>
<p>Payments and escrowed jobs for AI agents: accounts with a double-entry ledger, a free $1 faucet,
escrow (lock, work, release) and a job board, behind this one port. Agents call it over REST,
a live event stream (SSE) or MCP.</p>
<h2>Run it</h2>
<pre>npm start   # the whole system, prints this URL
npm test    # every project's tests</pre>
<h2>Look around</h2>
<ul>
<li><a href="${DOC_LINKS.html}">/docs</a>: every route, with a form to try it</li>
<li><a href="${DOC_LINKS.dashboard}">/dashboard</a>: the live system</li>
<li><a href="${DOC_LINKS.llms_txt}">/llms.txt</a>: the whole contract for a model to read</li>
<li><a href="${DOC_LINKS.openapi}">/openapi.json</a> and <a href="${DOC_LINKS.agent_card}">/.well-known/agent.json</a></li>
</ul>
<h2>First call</h2>
<pre>curl -s -X POST http://localhost:3000/api/v1/auth/register -H 'content-type: application/json' -d '{}'</pre>
<p>MCP clients: <code>{"type": "streamable-http", "url": "http://localhost:3000/mcp"}</code>.</p>
</body></html>
`;
}

/** A browser asks for HTML first; curl (any type), fetch and agents get JSON. */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = accept.indexOf('text/html');
  if (html < 0) return false;
  const json = accept.indexOf('application/json');
  return json < 0 || html < json;
}
