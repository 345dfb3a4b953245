import { createHmac, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import http from 'node:http';
import {
  createTestDatabase,
  freePort,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  spawnService,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'webhooks-e2e-admin-key-0123456789';

interface Received {
  body: string;
  signature: string;
  eventId: string;
  eventType: string;
}

/**
 * A real HTTP receiver on a fixed port that can be killed (every connection cut, nothing
 * listening) and brought back on the same port.
 */
class Receiver {
  readonly received: Received[] = [];
  private server?: http.Server;

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.received.push({
          body: Buffer.concat(chunks).toString('utf8'),
          signature: String(request.headers['x-signature']),
          eventId: String(request.headers['x-event-id']),
          eventType: String(request.headers['x-event-type']),
        });
        response.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async kill(): Promise<void> {
    const server = this.server!;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Distinct events in the order they first arrived. */
  firstArrivals(): Received[] {
    const seen = new Set<string>();
    return this.received.filter((delivery) => !seen.has(delivery.eventId) && seen.add(delivery.eventId));
  }
}

/** The receiver's check, written from docs/API.md: HMAC-SHA256 of "<t>.<body>" under the secret. */
function verifies(secret: string, signature: string, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature);
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest('hex');
  return expected === match[2];
}

/**
 * Webhooks end to end (ADR 0020): signed deliveries through a receiver crash with none lost and
 * duplicates only under the same id, per-endpoint order, one failing endpoint not blocking
 * another, refusal of private targets, disabling after persistent failure (with an SSE notice),
 * and authorization.
 */
describe('webhooks', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  /** A second gateway replica: both fan out and dispatch, sharing the durables and the queue. */
  let replica: ServiceProcess;
  const receivers: Receiver[] = [];

  const createWebhook = (agent: Agent, body: Record<string, unknown>) =>
    api.post<{ webhook_id: string; secret: string; error?: string; status: string }>(
      '/webhooks',
      body,
      agent.apiKey,
    );
  async function receiver(): Promise<Receiver> {
    const started = new Receiver(await freePort());
    await started.start();
    receivers.push(started);
    return started;
  }
  async function escrowLifecycle(creator: Agent, worker: Agent): Promise<string> {
    const created = await api.post<{ escrow_id: string }>(
      '/escrow/create',
      { amount_usd: 1, description: 'Label 100 images', counterparty_agent_id: worker.agentId },
      creator.apiKey,
    );
    expect(created.status).toBe(201);
    const escrowId = created.body.escrow_id;
    expect((await api.post(`/escrow/complete/${escrowId}`, {}, worker.apiKey)).status).toBe(200);
    expect((await api.post(`/escrow/release/${escrowId}`, {}, creator.apiKey)).status).toBe(200);
    return escrowId;
  }

  beforeAll(async () => {
    database = await createTestDatabase('webhookse2e');
    const env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: testNatsPrefix(),
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
    };
    const gatewayEnv = {
      WEBHOOK_SECRETS_KEY: randomBytes(32).toString('base64'),
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_ALLOW_LOOPBACK: 'true',
      WEBHOOK_RETRY_INITIAL_MS: '100',
      WEBHOOK_RETRY_MAX_MS: '400',
      WEBHOOK_DISABLE_AFTER_FAILURES: '8',
      WEBHOOK_DISABLE_AFTER_MS: '3000',
      WEBHOOK_POLL_INTERVAL_MS: '50',
      WEBHOOK_TIMEOUT_MS: '2000',
      ...(process.env.WEBHOOKS_DEBUG ? { LOG_LEVEL: 'debug' } : {}),
    };
    system = await startSystem(env, undefined, { perApp: { gateway: gatewayEnv } });
    replica = await spawnService('gateway', { env: { ...env, ...gatewayEnv } });
    await replica.waitUntilReady();
    api = new ApiClient(system.gatewayUrl);
  }, 90_000);

  afterAll(async () => {
    if (process.env.WEBHOOKS_DEBUG) console.log(system?.services.gateway.output.join('\n'));
    await Promise.all(receivers.map((started) => started.kill().catch(() => undefined)));
    await replica?.stop();
    await system?.stop();
    await database?.drop();
  });

  it('delivers every event through a receiver crash, signed, in log order, with two gateway replicas; another endpoint is not held up', async () => {
    const [creator, worker] = await Promise.all([api.register(), api.register()]);
    await api.credit(ADMIN_API_KEY, creator.agentId, 50);
    const crashing = await receiver();
    const steady = await receiver();
    const mine = await createWebhook(creator, { url: crashing.url, events: ['escrow.*'] });
    expect(mine.status).toBe(201);
    expect(mine.body.secret).toMatch(/^whsec_/);
    const theirs = await createWebhook(worker, { url: steady.url, events: ['escrow.released'] });
    expect(theirs.status).toBe(201);

    const escrowIds: string[] = [];
    for (let i = 0; i < 3; i++) escrowIds.push(await escrowLifecycle(creator, worker));
    await waitFor('the first deliveries', async () => crashing.received.length > 0, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    await crashing.kill();
    const steadyBefore = steady.firstArrivals().length;
    for (let i = 0; i < 3; i++) escrowIds.push(await escrowLifecycle(creator, worker));
    // While the first receiver is down, the other endpoint gets its events.
    await waitFor(
      'the steady endpoint to move on',
      async () => steady.firstArrivals().length >= steadyBefore + 3,
      {
        timeoutMs: 15_000,
        intervalMs: 50,
      },
    );
    await crashing.start();

    // funded, completed, released per escrow: every one arrives.
    await waitFor('every event', async () => crashing.firstArrivals().length >= escrowIds.length * 3, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const arrivals = crashing.firstArrivals();
    expect(arrivals).toHaveLength(escrowIds.length * 3);
    for (const delivery of crashing.received) {
      expect(verifies(mine.body.secret, delivery.signature, delivery.body)).toBe(true);
      // A duplicate is the same event: same id, same body.
      expect(JSON.parse(delivery.body).id).toBe(delivery.eventId);
    }
    const bodies = new Map<string, string>();
    for (const delivery of crashing.received) {
      expect(bodies.get(delivery.eventId) ?? delivery.body).toBe(delivery.body);
      bodies.set(delivery.eventId, delivery.body);
    }
    // The REST shape of the SSE stream; in log order (one log, so positions only grow).
    const events = arrivals.map(
      (delivery) =>
        JSON.parse(delivery.body) as { position: number; type: string; data: { escrow_id: string } },
    );
    expect(events.map((event) => event.position)).toEqual(
      [...events.map((event) => event.position)].sort((a, b) => a - b),
    );
    for (const escrowId of escrowIds)
      expect(events.filter((event) => event.data.escrow_id === escrowId).map((event) => event.type)).toEqual([
        'funded',
        'completed',
        'released',
      ]);
    expect(arrivals[0]!.eventType).toBe('escrow.funded');

    // A tampered body fails the check.
    const sample = crashing.received[0]!;
    expect(verifies(mine.body.secret, sample.signature, sample.body.replace('"funded"', '"released"'))).toBe(
      false,
    );
    expect(verifies(theirs.body.secret, sample.signature, sample.body)).toBe(false);

    // The worker's endpoint asked only for releases, of escrows it is party to.
    await waitFor('the worker releases', async () => steady.firstArrivals().length >= escrowIds.length, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    expect(new Set(steady.firstArrivals().map((delivery) => delivery.eventType))).toEqual(
      new Set(['escrow.released']),
    );

    const log = await api.get<{ deliveries: Array<{ state: string; attempts: number; event_id: string }> }>(
      `/webhooks/${mine.body.webhook_id}/deliveries?limit=100`,
      creator.apiKey,
    );
    expect(log.status).toBe(200);
    expect(log.body.deliveries).toHaveLength(escrowIds.length * 3);
    expect(log.body.deliveries.every((delivery) => delivery.state === 'delivered')).toBe(true);
    expect(log.body.deliveries.some((delivery) => delivery.attempts > 1)).toBe(true);
  }, 120_000);

  it('sends a signed test event on request', async () => {
    const agent = await api.register();
    const target = await receiver();
    const created = await createWebhook(agent, { url: target.url, events: ['market.*'] });
    const test = await api.post<{ event_id: string }>(
      `/webhooks/${created.body.webhook_id}/test`,
      {},
      agent.apiKey,
    );
    expect(test.status).toBe(202);
    await waitFor('the test event', async () => target.received.length > 0, {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const [delivery] = target.received;
    expect(delivery).toMatchObject({ eventId: test.body.event_id, eventType: 'webhook.test' });
    expect(verifies(created.body.secret, delivery!.signature, delivery!.body)).toBe(true);
  });

  it('refuses private and reserved targets, bad URLs and bad filters; nothing is created', async () => {
    const agent = await api.register();
    for (const url of [
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest',
      'http://[::ffff:192.168.0.1]/',
      'http://192.168.1.20:8080/',
    ])
      expect([url, (await createWebhook(agent, { url, events: ['escrow.*'] })).body.error]).toEqual([
        url,
        'webhook_target_refused',
      ]);
    for (const url of ['ftp://example.com/', 'not a url', 'http://user:pw@127.0.0.1/', 42])
      expect([url, (await createWebhook(agent, { url, events: ['escrow.*'] })).body.error]).toEqual([
        url,
        'invalid_webhook_url',
      ]);
    for (const events of [[], ['casino.*'], 'escrow.*', ['escrow.Released']])
      expect((await createWebhook(agent, { url: 'http://127.0.0.1:9/x', events })).body.error).toBe(
        'invalid_event_filter',
      );
    expect((await api.get<{ webhooks: unknown[] }>('/webhooks', agent.apiKey)).body.webhooks).toEqual([]);
  });

  it('disables an endpoint that keeps failing, tells its owner on the SSE stream, and stops sending', async () => {
    const agent = await api.register();
    const abort = new AbortController();
    const stream = await fetch(`${system.gatewayUrl}/escrow/events/stream`, {
      headers: { authorization: `Bearer ${agent.apiKey}` },
      signal: abort.signal,
    });
    let text = '';
    const reading = (async () => {
      const reader = stream.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString('utf8');
      }
    })().catch(() => undefined);

    const deadPort = await freePort();
    const created = await createWebhook(agent, {
      url: `http://127.0.0.1:${deadPort}/hook`,
      events: ['escrow.*'],
    });
    const webhookId = created.body.webhook_id;
    expect((await api.post(`/webhooks/${webhookId}/test`, {}, agent.apiKey)).status).toBe(202);
    await waitFor(
      'the webhook disabled',
      async () =>
        (await api.get<{ webhooks: Array<{ status: string }> }>('/webhooks', agent.apiKey)).body.webhooks[0]
          ?.status === 'disabled',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    await waitFor('the SSE notice', async () => text.includes('event: webhook_disabled'), {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
    expect(text).toContain(webhookId);
    abort.abort();
    await reading;

    const listed = (await api.get<{ webhooks: Array<Record<string, unknown>> }>('/webhooks', agent.apiKey))
      .body.webhooks[0]!;
    expect(listed.consecutive_failures).toBeGreaterThanOrEqual(8);
    expect(listed.disabled_reason).toEqual(expect.stringContaining('failed attempts'));
    const log = await api.get<{ deliveries: Array<{ state: string; attempts: number; last_error: string }> }>(
      `/webhooks/${webhookId}/deliveries`,
      agent.apiKey,
    );
    const attempts = log.body.deliveries[0]!.attempts;
    expect(log.body.deliveries[0]).toMatchObject({ state: 'pending', last_error: expect.any(String) });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const later = await api.get<{ deliveries: Array<{ attempts: number }> }>(
      `/webhooks/${webhookId}/deliveries`,
      agent.apiKey,
    );
    expect(later.body.deliveries[0]!.attempts).toBe(attempts);
  }, 60_000);

  it('keeps webhooks private to their owner: another agent can neither see, test, read nor delete them', async () => {
    const [owner, stranger] = await Promise.all([api.register(), api.register()]);
    const created = await createWebhook(owner, {
      url: 'http://127.0.0.1:9/hook',
      events: ['escrow.released'],
    });
    const id = created.body.webhook_id;
    expect((await api.get<{ webhooks: unknown[] }>('/webhooks', stranger.apiKey)).body.webhooks).toEqual([]);
    for (const [method, path] of [
      ['DELETE', `/webhooks/${id}`],
      ['GET', `/webhooks/${id}/deliveries`],
      ['POST', `/webhooks/${id}/test`],
    ] as const) {
      const answer = await api.call(method, path, {
        key: stranger.apiKey,
        ...(method === 'POST' ? { body: {} } : {}),
      });
      expect([method, path, answer.status, answer.body.error]).toEqual([
        method,
        path,
        404,
        'webhook_not_found',
      ]);
    }
    expect((await api.get('/webhooks')).status).toBe(401);
    expect((await api.get<{ webhooks: unknown[] }>('/webhooks', owner.apiKey)).body.webhooks).toHaveLength(1);
    expect((await api.call('DELETE', `/webhooks/${id}`, { key: owner.apiKey })).status).toBe(200);
    expect((await api.get<{ webhooks: unknown[] }>('/webhooks', owner.apiKey)).body.webhooks).toEqual([]);

    // At most 10 per agent, even when asked concurrently.
    const many = await Promise.all(
      Array.from({ length: 12 }, () =>
        createWebhook(owner, { url: 'http://127.0.0.1:9/hook', events: ['escrow.*'] }),
      ),
    );
    expect(many.filter((answer) => answer.status === 201)).toHaveLength(10);
    expect(many.filter((answer) => answer.body.error === 'webhook_limit_reached')).toHaveLength(2);
  });

  it('works through MCP: create_webhook, list_webhooks, test_webhook, list_webhook_deliveries, delete_webhook', async () => {
    const agent = await api.register();
    const target = await receiver();
    const client = new Client({ name: 'webhooks-e2e', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${system.gatewayUrl}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${agent.apiKey}` } },
      }),
    );
    try {
      const call = async (name: string, args: Record<string, unknown> = {}) => {
        const result = (await client.callTool({ name, arguments: args })) as {
          isError?: boolean;
          content: Array<{ type: string; text: string }>;
        };
        expect({ name, isError: result.isError === true }).toEqual({ name, isError: false });
        return JSON.parse(result.content[0]!.text) as Record<string, unknown>;
      };
      const created = await call('create_webhook', { url: target.url, events: ['escrow.*'] });
      expect(created.secret).toEqual(expect.stringMatching(/^whsec_/));
      const webhookId = String(created.webhook_id);
      expect(((await call('list_webhooks')).webhooks as unknown[]).length).toBe(1);
      const test = await call('test_webhook', { webhook_id: webhookId });
      await waitFor('the MCP test event', async () => target.received.length > 0, {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      expect(verifies(String(created.secret), target.received[0]!.signature, target.received[0]!.body)).toBe(
        true,
      );
      await waitFor(
        'the delivery logged',
        async () =>
          (
            (await call('list_webhook_deliveries', { webhook_id: webhookId })).deliveries as Array<{
              event_id: string;
              state: string;
            }>
          ).some((delivery) => delivery.event_id === test.event_id && delivery.state === 'delivered'),
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(await call('delete_webhook', { webhook_id: webhookId })).toEqual({
        webhook_id: webhookId,
        deleted: true,
      });
    } finally {
      await client.close();
    }
  });
});
