import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { casinoCommands } from '@pf/contracts';
import { ApiClient } from './api-client.js';

const ADMIN_API_KEY = 'discovery-e2e-admin-key-0123456789';

/** The JSON lines a service wrote (its pino output), parsed; other lines are skipped. */
function logLines(service: ServiceProcess): Array<Record<string, unknown>> {
  return service.output.flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/**
 * Issue #21: what a newcomer finds at the root of the gateway, and one request followed through
 * the logs of gateway → escrow → casino by its X-Request-Id.
 */
describe('landing page, llms.txt, agent card and request logs', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;

  beforeAll(async () => {
    database = await createTestDatabase('discovery');
    system = await startSystem({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: testNatsPrefix(),
      ADMIN_API_KEY,
      // Debug, to see the commands casino handles (a ledger answers thousands a second, so those
      // lines are debug) and to check that the route mapping is written at debug, not info.
      LOG_LEVEL: 'debug',
    });
    api = new ApiClient(system.gatewayUrl);
  }, 90_000);

  afterAll(async () => {
    await system?.stop();
    await database?.drop();
  });

  it('GET / answers an agent with the service index and a browser with a page', async () => {
    const index = await api.get('/');
    expect(index.status).toBe(200);
    expect(index.body).toMatchObject({
      service: 'agent-marketplace',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      docs: expect.objectContaining({ llms_txt: '/llms.txt', openapi: '/openapi.json', html: '/docs' }),
      auth: expect.objectContaining({ type: 'bearer' }),
    });
    expect(Object.keys(index.body.endpoints as object)).toEqual(
      expect.arrayContaining(['POST /escrow/create', 'POST /jobs', 'GET /llms.txt', 'POST /mcp']),
    );

    const page = await fetch(`${system.gatewayUrl}/`, {
      headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    for (const link of ['/docs', '/dashboard', '/llms.txt']) expect(html).toContain(`href="${link}"`);
    expect(html).toContain('npm start');
  });

  it('serves llms.txt (also under /.well-known) with every route of /openapi.json', async () => {
    const llms = await fetch(`${system.gatewayUrl}/llms.txt`);
    expect(llms.status).toBe(200);
    expect(llms.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await llms.text();
    const wellKnown = await (await fetch(`${system.gatewayUrl}/.well-known/llms.txt`)).text();
    expect(wellKnown).toBe(text);
    const openApi = (await (await fetch(`${system.gatewayUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    for (const [path, methods] of Object.entries(openApi.paths))
      for (const method of Object.keys(methods))
        expect(text).toContain(`### ${method.toUpperCase()} ${path}\n`);
    expect(text).toContain('`create_escrow`');
  });

  it('describes itself and its MCP endpoint in /.well-known/agent.json', async () => {
    const card = await api.get<{ mcp: { url: string }; skills: Array<{ id: string }> }>(
      '/.well-known/agent.json',
    );
    expect(card.status).toBe(200);
    expect(card.body.mcp.url).toBe(`${system.gatewayUrl}/mcp`);
    expect(card.body.skills.map((skill) => skill.id)).toEqual(
      expect.arrayContaining(['create_escrow', 'get_balance']),
    );
  });

  it('follows one escrow create by its X-Request-Id through gateway, escrow and casino logs', async () => {
    const creator = await api.register();
    const worker = await api.register();
    await api.credit(ADMIN_API_KEY, creator.agentId, 10);
    const requestId = `e2e-trace-${Date.now()}`;
    const created = await api.call('POST', '/escrow/create', {
      key: creator.apiKey,
      headers: { 'x-request-id': requestId },
      body: { amount_usd: 2.5, description: 'Label 100 images', counterparty_agent_id: worker.agentId },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-request-id')).toBe(requestId);

    const tagged = (service: ServiceProcess) =>
      logLines(service).filter((line) => line.request_id === requestId);
    await waitFor('the access line', () =>
      tagged(system.services.gateway).some((line) => line.msg === 'request'),
    );
    expect(tagged(system.services.gateway)).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'request',
        method: 'POST',
        route: '/escrow/create',
        status: 201,
        agent_id: creator.agentId,
        latency_ms: expect.any(Number),
      }),
    );
    expect(tagged(system.services.escrow)).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'escrow funded',
        escrowId: created.body.escrow_id,
        amount_usd: '2.5',
      }),
    );
    expect(tagged(system.services.casino)).toContainEqual(
      expect.objectContaining({ msg: 'command', command: casinoCommands.hold, ok: true }),
    );
    // Never a key or a body in any service's log.
    for (const app of ['gateway', 'escrow', 'casino'] as const) {
      const output = system.services[app].output.join('\n');
      expect(output).not.toContain(creator.apiKey);
      expect(output).not.toContain('Label 100 images');
    }
  });

  it('logs an MCP tool call’s route under the MCP request’s id', async () => {
    const requestId = `e2e-mcp-${Date.now()}`;
    const response = await fetch(`${system.gatewayUrl}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-request-id': requestId,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'escrow_stats', arguments: {} },
      }),
    });
    expect(response.status).toBe(200);
    const routes = () =>
      logLines(system.services.gateway)
        .filter((line) => line.msg === 'request' && line.request_id === requestId)
        .map((line) => line.route);
    await waitFor('both access lines', () => routes().length === 2);
    expect(routes().sort()).toEqual(['/escrow/stats', '/mcp']);
  });

  it('writes business facts at info and keeps the route mapping out of the info log', async () => {
    await waitFor('the agent registered line', () =>
      logLines(system.services.casino).some((l) => l.msg === 'agent registered'),
    );
    expect(logLines(system.services.casino)).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'deposit credited', amount_usd: '10' }),
    );
    const gatewayLines = logLines(system.services.gateway);
    const mapped = gatewayLines.filter((line) => String(line.msg).startsWith('Mapped {'));
    expect(mapped.length).toBeGreaterThan(10);
    expect(mapped.filter((line) => line.level !== 'debug')).toEqual([]);
    expect(gatewayLines).toContainEqual(expect.objectContaining({ msg: 'gateway ready' }));
    // A request without an id gets one, in the header and in the access line.
    const health = await fetch(`${system.gatewayUrl}/api/v1/ping`);
    const generated = health.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    await waitFor('ping access line', () =>
      logLines(system.services.gateway).some(
        (line) => line.request_id === generated && line.route === '/api/v1/ping',
      ),
    );
  });
});
