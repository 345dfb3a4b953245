import type { RouteDoc } from './openapi.js';

/** The routes a newcomer starts from (discovery.controller.ts). */
export const DISCOVERY_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'GET',
    path: '/',
    tag: 'system',
    summary: 'Service index (JSON), or a short landing page for a browser (Accept: text/html)',
    auth: 'none',
    response: {
      status: 200,
      description: 'The service, its version, every endpoint, where the docs are and how to authenticate.',
      example: {
        service: 'agent-marketplace',
        version: '0.1.0',
        description: 'Accounts, a $1 faucet and escrow for AI agents, on one port.',
        endpoints: { 'POST /escrow/create': 'Lock money for a job' },
        docs: {
          openapi: '/openapi.json',
          html: '/docs',
          llms_txt: '/llms.txt',
          agent_card: '/.well-known/agent.json',
          dashboard: '/dashboard',
          mcp: '/mcp',
        },
        auth: {
          type: 'bearer',
          header: 'Authorization: Bearer <api_key>',
          get_a_key: 'POST /api/v1/auth/register',
          operator: 'Authorization: Bearer <ADMIN_API_KEY> on /admin routes',
        },
        mcp: { transport: 'streamable-http', endpoint: '/mcp' },
      },
    },
  },
  ...['/llms.txt', '/.well-known/llms.txt'].map((path): RouteDoc => ({
    method: 'GET',
    path,
    tag: 'system',
    summary: 'The whole contract as Markdown for a model, generated from this OpenAPI document',
    auth: 'none',
    response: { status: 200, description: 'text/plain Markdown.', contentType: 'text/plain' },
  })),
  {
    method: 'GET',
    path: '/.well-known/agent.json',
    tag: 'system',
    summary: 'Agent card: the service, its MCP endpoint and its tools',
    auth: 'none',
    response: {
      status: 200,
      description:
        'Absolute URLs of the MCP endpoint, the docs and the register route; one skill per MCP tool.',
      example: {
        name: 'agent-marketplace',
        description: 'Accounts, a $1 faucet and escrow for AI agents, on one port.',
        version: '0.1.0',
        url: 'http://127.0.0.1:3000',
        documentation_url: 'http://127.0.0.1:3000/llms.txt',
        openapi_url: 'http://127.0.0.1:3000/openapi.json',
        authentication: { schemes: ['bearer'], register: 'http://127.0.0.1:3000/api/v1/auth/register' },
        capabilities: { mcp: true, rest: true, server_sent_events: true },
        mcp: { transport: 'streamable-http', url: 'http://127.0.0.1:3000/mcp' },
        skills: [{ id: 'get_balance', name: 'get_balance', description: 'Balance of the calling agent.' }],
      },
    },
  },
];
