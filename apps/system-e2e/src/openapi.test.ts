import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  workspaceRoot,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, missingKeys } from './api-client.js';

const ADMIN_API_KEY = 'openapi-e2e-admin-key-0123456789';
const BODY_LIMIT_BYTES = 2_048;

/**
 * The routes of API.md. Read from ../shared/API.md when it is there (CI clones the project
 * with shared/ beside it); otherwise this copy is used, and the test says so.
 */
const EMBEDDED_API_ROUTES = [
  'POST /api/v1/auth/register',
  'GET /api/v1/auth/balance',
  'GET /api/v1/auth/ledger',
  'GET /api/v1/auth/referral/stats',
  'POST /faucet/claim',
  'GET /faucet/stats',
  'POST /escrow/create',
  'GET /escrow/pending',
  'POST /escrow/complete/{id}',
  'POST /escrow/release/{id}',
  'POST /escrow/decline/{id}',
  'POST /escrow/dispute/{id}',
  'GET /escrow/{id}',
  'GET /escrow/stats',
  'GET /escrow/events/stream',
  'POST /admin/credit',
  'POST /admin/escrow/{id}/resolve',
  'POST /mcp',
];

function apiMdRoutes(): { routes: string[]; source: string } {
  const file = path.join(workspaceRoot(), '..', 'shared', 'API.md');
  if (!existsSync(file))
    return {
      routes: EMBEDDED_API_ROUTES,
      source: 'the list embedded in openapi.test.ts (../shared/API.md not found)',
    };
  const text = readFileSync(file, 'utf8');
  const routes = [...text.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^\s`?]*)/g)].map(
    (match) => `${match[1]} ${match[2]}`,
  );
  return { routes: [...new Set(routes)], source: file };
}

/** `/escrow/{id}` and `/escrow/{escrow_id}` are the same route. */
const normalize = (route: string) => route.replace(/\{[^}]*\}/g, '{}');

describe('the documented HTTP surface: /openapi.json, /docs, errors and CORS', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  const prefix = testNatsPrefix();

  beforeAll(async () => {
    database = await createTestDatabase('openapi');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: prefix,
        ADMIN_API_KEY,
        BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
      },
      ['casino', 'gateway'],
    );
    api = new ApiClient(system.gatewayUrl);
  }, 60_000);

  afterAll(async () => {
    await system?.stop();
    const nats = await connectTestNats();
    await deletePrefixedStreams(nats, prefix).catch(() => undefined);
    await nats.close();
    await database?.drop();
  });

  const openApi = async () =>
    (await api.get<{ paths: Record<string, Record<string, Record<string, unknown>>> }>('/openapi.json')).body;

  it('lists every route of API.md', async () => {
    const { routes, source } = apiMdRoutes();
    process.stdout.write(`API.md routes (${routes.length}) from ${source}\n`);
    expect(routes.length).toBeGreaterThanOrEqual(EMBEDDED_API_ROUTES.length);
    const document = await openApi();
    const documented = new Set(
      Object.entries(document.paths).flatMap(([route, methods]) =>
        Object.keys(methods).map((method) => normalize(`${method.toUpperCase()} ${route}`)),
      ),
    );
    expect(routes.map(normalize).filter((route) => !documented.has(route))).toEqual([]);
    expect(documented.size).toBeGreaterThanOrEqual(routes.length);
  });

  it('describes request bodies with the schemas the routes validate with, and auth', async () => {
    const document = await openApi();
    const create = document.paths['/escrow/create']!.post! as {
      security: unknown;
      requestBody: {
        content: Record<string, { schema: { required: string[]; properties: Record<string, unknown> } }>;
      };
    };
    expect(create.security).toEqual([{ agentKey: [] }]);
    const schema = create.requestBody.content['application/json']!.schema;
    expect(schema.required).toEqual(['amount_usd', 'description', 'counterparty_agent_id']);
    expect(Object.keys(schema.properties)).toEqual([
      'amount_usd',
      'description',
      'counterparty_agent_id',
      'timeout_hours',
      'referral_code',
      'evaluator_agent_id',
      'evaluator_fee_bps',
      'milestones',
    ]);
    const claim = document.paths['/faucet/claim']!.post! as {
      requestBody: {
        content: Record<string, { schema: { properties: Record<string, { pattern?: string }> } }>;
      };
    };
    expect(claim.requestBody.content['application/json']!.schema.properties.agent_casino_id!.pattern).toBe(
      '^ag_[0-9a-f]{12}$',
    );
  });

  it('shows documented examples that match live answers', async () => {
    const document = await openApi();
    const example = (route: string, method: string) => {
      const responses = document.paths[route]![method]!.responses as Record<
        string,
        { content?: Record<string, { example?: unknown }> }
      >;
      return Object.values(responses)[0]!.content!['application/json']!.example;
    };
    const registered = await api.post('/api/v1/auth/register', {});
    expect(missingKeys(example('/api/v1/auth/register', 'post'), registered.body)).toEqual([]);
    const agent = registered.body as { agent_id: string; api_key: string };
    await api.credit(ADMIN_API_KEY, agent.agent_id, 3);
    expect(
      missingKeys(
        example('/api/v1/auth/balance', 'get'),
        (await api.get('/api/v1/auth/balance', agent.api_key)).body,
      ),
    ).toEqual([]);
    expect(
      missingKeys(
        example('/api/v1/auth/ledger', 'get'),
        (await api.get('/api/v1/auth/ledger', agent.api_key)).body,
      ),
    ).toEqual([]);
  });

  it('serves /docs: one self-contained HTML page pinned by its CSP', async () => {
    const response = await fetch(`${system.gatewayUrl}/docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toMatch(
      /default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'/,
    );
    const html = await response.text();
    expect(html).toContain("fetch('/openapi.json')");
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
  });

  it.each([
    ['an unknown route', 'GET', '/no/such/route', {}, 404, 'not_found'],
    ['an unknown method on a known path', 'DELETE', '/faucet/claim', {}, 404, 'not_found'],
    ['GET on the stateless MCP endpoint', 'GET', '/mcp', {}, 405, 'method_not_allowed'],
    ['broken JSON', 'POST', '/api/v1/auth/register', { body: '{"agent_name":' }, 400, 'invalid_request'],
    [
      'a JSON string instead of an object',
      'POST',
      '/api/v1/auth/register',
      { body: '"hello"' },
      400,
      'invalid_request',
    ],
    [
      'a non-JSON content type',
      'POST',
      '/api/v1/auth/register',
      { body: 'agent_name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      400,
      'invalid_request',
    ],
    [
      'a body over the limit',
      'POST',
      '/api/v1/auth/register',
      { body: { agent_name: 'x'.repeat(BODY_LIMIT_BYTES) } },
      413,
      'invalid_request',
    ],
    [
      'a wrong field type',
      'POST',
      '/api/v1/auth/register',
      { body: { agent_name: 12 } },
      400,
      'invalid_request',
    ],
    ['a malformed key', 'GET', '/api/v1/auth/balance', { key: 'nope' }, 401, 'unauthorized'],
    [
      'an unknown key',
      'GET',
      '/api/v1/auth/ledger?limit=0',
      { key: `sk_live_${'0'.repeat(48)}` },
      401,
      'unauthorized',
    ],
  ])(
    'answers %s with JSON {error, message}, never HTML or a stack',
    async (_name, method, route, options, status, code) => {
      const answer = await api.call(
        method,
        route,
        options as { body?: unknown; key?: string; headers?: Record<string, string> },
      );
      expect(answer.status).toBe(status);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body).toMatchObject({ error: code, message: expect.any(String) });
      expect(JSON.stringify(answer.body)).not.toMatch(/ at .+\.(js|ts):\d+|<html|statusCode/i);
    },
  );

  it('answers GET /mcp with Allow: POST', async () => {
    const answer = await api.get('/mcp');
    expect(answer.headers.get('allow')).toBe('POST');
  });

  it('opens reads to every origin and keeps writes closed to browsers', async () => {
    const read = await fetch(`${system.gatewayUrl}/openapi.json`, {
      headers: { origin: 'https://dashboard.example' },
    });
    expect(read.headers.get('access-control-allow-origin')).toBe('*');
    const readError = await fetch(`${system.gatewayUrl}/api/v1/auth/balance`, {
      headers: { origin: 'https://dashboard.example' },
    });
    expect(readError.status).toBe(401);
    expect(readError.headers.get('access-control-allow-origin')).toBe('*');

    const preflight = (method: string) =>
      fetch(`${system.gatewayUrl}/api/v1/auth/balance`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://dashboard.example',
          'access-control-request-method': method,
          'access-control-request-headers': 'authorization',
        },
      });
    const readPreflight = await preflight('GET');
    expect(readPreflight.status).toBe(204);
    expect(readPreflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(readPreflight.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(readPreflight.headers.get('access-control-allow-methods')).toBe('GET, HEAD');

    const writePreflight = await preflight('POST');
    expect(writePreflight.status).toBe(403);
    expect(writePreflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(await writePreflight.json()).toMatchObject({ error: 'forbidden' });

    const write = await fetch(`${system.gatewayUrl}/api/v1/auth/register`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(write.headers.get('access-control-allow-origin')).toBeNull();
  });
});
