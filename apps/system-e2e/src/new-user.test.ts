import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient } from './api-client.js';

const ADMIN_API_KEY = 'new-user-e2e-admin-key-0123456789';

/** What a new user sees first with curl and a browser: small things that should read right. */
describe('first contact: answers a new user reads', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;

  beforeAll(async () => {
    database = await createTestDatabase('newuser');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: testNatsPrefix(),
        ADMIN_API_KEY,
        ESCROW_MIN_TIMEOUT_SECONDS: '60',
      },
      ['casino', 'escrow', 'gateway'],
    );
    api = new ApiClient(system.gatewayUrl);
  }, 60_000);

  afterAll(async () => {
    await system?.stop(); // also deletes the run's streams
    await database?.drop();
  });

  it('ends every JSON body with a newline, so curl output does not run into the prompt', async () => {
    for (const [method, path] of [
      ['POST', '/api/v1/auth/register'],
      ['GET', '/escrow/stats'],
      ['GET', '/no/such/route'],
      ['GET', '/openapi.json'],
    ] as const) {
      const response = await fetch(`${system.gatewayUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'POST' ? '{}' : undefined,
      });
      const text = await response.text();
      expect(`${path} ${text.slice(-1)}`).toBe(`${path} \n`);
      expect(() => JSON.parse(text)).not.toThrow();
    }
  });

  it('GET on an escrow write says to use POST (405), instead of "no such escrow"', async () => {
    const answer = await api.get('/escrow/create');
    expect(answer).toMatchObject({
      status: 405,
      body: { error: 'method_not_allowed', message: 'use POST /escrow/create' },
    });
    expect(answer.headers.get('allow')).toBe('POST');
    expect(await api.get('/escrow/release')).toMatchObject({
      status: 405,
      body: { message: 'use POST /escrow/release/{escrow_id}' },
    });
    expect(await api.get('/escrow/esc_0000000000000000')).toMatchObject({
      status: 404,
      body: { error: 'not_found' },
    });
  });

  it('tells a missing admin key from a wrong one', async () => {
    const body = { agent_id: 'ag_000000000000', amount_usd: 1, reference: 'x' };
    expect(await api.post('/admin/credit', body)).toMatchObject({
      status: 401,
      body: { error: 'unauthorized', message: expect.stringMatching(/^missing admin key/) },
    });
    expect(await api.post('/admin/credit', body, 'not-the-admin-key')).toMatchObject({
      status: 401,
      body: { message: 'invalid admin key' },
    });
  });

  it('says the timeout bounds in readable hours', async () => {
    const [creator, worker] = [await api.register(), await api.register()];
    await api.credit(ADMIN_API_KEY, creator.agentId, 5);
    const answer = await api.post(
      '/escrow/create',
      {
        amount_usd: 1,
        description: 'too short a job',
        counterparty_agent_id: worker.agentId,
        timeout_hours: 0.001,
      },
      creator.apiKey,
    );
    expect(answer).toMatchObject({
      status: 400,
      body: { error: 'invalid_timeout', message: 'timeout_hours must be between 0.016667 (60 s) and 720' },
    });
  });

  it('serves the docs page without a favicon 404, and names the MCP tag MCP', async () => {
    const favicon = await fetch(`${system.gatewayUrl}/favicon.ico`);
    expect(favicon.status).toBe(204);
    const document = (await api.get<{ tags: Array<{ name: string }> }>('/openapi.json')).body;
    expect(document.tags.map((tag) => tag.name)).toContain('MCP');
    expect(document.tags.map((tag) => tag.name)).not.toContain('mcp');
    const page = await (await fetch(`${system.gatewayUrl}/docs`)).text();
    expect(page).not.toContain('text-transform:capitalize');
  });
});
