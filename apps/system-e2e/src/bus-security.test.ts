import { spawn } from 'node:child_process';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { busInboxPrefix, casinoCommands, SubjectPrefix, type BusUser } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  SecuredNats,
  startSystem,
  testNatsPrefix,
  type AppName,
  type TestDatabase,
  type TestSystem,
  waitFor,
  workspaceRoot,
} from '@pf/testing';

const ADMIN_API_KEY = 'bus-security-admin-key-0123456789';
const SETTLE_MS = 300;

/**
 * Issue #14.2, the open bus: a nats-server of the test's own that enforces the per-service
 * users rendered from the contracts (busPermissions), and the four apps each on its own user.
 */
describe('bus security: per-service NATS users (own nats-server)', () => {
  const prefix = testNatsPrefix();
  const p = new SubjectPrefix(prefix);
  let server: SecuredNats;
  let database: TestDatabase;
  let system: TestSystem;
  let sql: pg.Client;
  const open: NatsConnection[] = [];

  const connectAs = async (user: BusUser, password = server.password(user)) => {
    const connection = await connectTestNats(
      server.url,
      { maxReconnectAttempts: 0 },
      { user, prefix, security: { NATS_USER: user, NATS_PASSWORD: password } },
    );
    open.push(connection);
    return connection;
  };

  beforeAll(async () => {
    server = await SecuredNats.start({ prefix });
    database = await createTestDatabase('bussec');
    const perApp = Object.fromEntries(
      (['casino', 'faucet', 'escrow', 'gateway'] as const).map((app) => [app, server.envFor(app)]),
    ) as Record<AppName, Record<string, string>>;
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: server.url,
        NATS_PREFIX: prefix,
        ADMIN_API_KEY,
        FAUCET_IP_LIMIT_PER_DAY: '0',
      },
      ['casino', 'faucet', 'escrow', 'gateway'],
      // Four apps starting at once on a busy 2-core machine can take longer than the usual 20 s.
      { perApp, readyTimeoutMs: 60_000 },
    );
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(open.map((connection) => connection.close()));
    await sql?.end();
    await system?.stop();
    await server?.stop();
    await database?.drop();
  });

  it('refuses a client without credentials', async () => {
    await expect(connectTestNats(server.url, { maxReconnectAttempts: 0 })).rejects.toThrow(
      /Authorization Violation/i,
    );
  });

  it('refuses a client with a wrong password', async () => {
    await expect(connectAs('ops', 'not-the-password')).rejects.toThrow(/Authorization Violation/i);
  });

  it.each<BusUser>(['faucet', 'escrow', 'market'])(
    'the %s user cannot send casino.cmd.credit',
    async (user) => {
      const connection = await connectAs(user);
      const request = connection.request(
        p.subject(casinoCommands.credit),
        JSON.stringify({ agentId: 'ag_000000000001', amountMicros: '1', reference: 'x' }),
        { timeout: 2_000 },
      );
      await expect(request).rejects.toThrow(/Permissions Violation for Publish/i);
    },
  );

  it("a service user cannot answer another service's commands nor read another user's replies", async () => {
    const connection = await connectAs('escrow');
    const errors = collectErrors(connection);
    const commands = connection.subscribe(p.subject('casino.cmd.>'));
    const replies = connection.subscribe(`${busInboxPrefix('gateway', p)}.>`);
    await connection.flush();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    expect(errors.join('\n')).toMatch(/Permissions Violation for Subscription to "[^"]*casino\.cmd\.>"/);
    expect(errors.join('\n')).toMatch(/Permissions Violation for Subscription to "_INBOX_[^"]*_gateway\.>"/);
    commands.unsubscribe();
    replies.unsubscribe();
  });

  it('the whole lifecycle works with every app on its own user: register, faucet, admin credit, escrow create, complete, release, events', async () => {
    const creator = await http('POST', '/api/v1/auth/register', {});
    const worker = await http('POST', '/api/v1/auth/register', {});
    expect(creator.status).toBe(201);
    const creatorAgent = creator.body.agent as { id: string; api_key: string };
    const workerAgent = worker.body.agent as { id: string; api_key: string };
    expect((await http('POST', '/faucet/claim', { agent_casino_id: creatorAgent.id })).status).toBeLessThan(
      300,
    );
    const credit = await http(
      'POST',
      '/admin/credit',
      { agent_id: creatorAgent.id, amount_usd: 5, reference: `bus-${creatorAgent.id}` },
      ADMIN_API_KEY,
    );
    expect(credit.status).toBe(200);
    const created = await http(
      'POST',
      '/escrow/create',
      { amount_usd: 2, description: 'bus', counterparty_agent_id: workerAgent.id, timeout_hours: 1 },
      creatorAgent.api_key,
    );
    expect(created.status).toBe(201);
    const escrowId = created.body.escrow_id as string;
    expect(
      (await http('POST', `/escrow/complete/${escrowId}`, { result_summary: 'done' }, workerAgent.api_key))
        .status,
    ).toBe(200);
    expect((await http('POST', `/escrow/release/${escrowId}`, {}, creatorAgent.api_key)).status).toBe(200);
    const balance = await http('GET', '/api/v1/auth/balance', undefined, workerAgent.api_key);
    expect(balance.body.balance_usd).toBeGreaterThan(1.9);
    // Events flowed too: casino's relay published the deposit, faucet's durable consumer read it.
    await waitFor(
      'faucet saw the deposit',
      async () =>
        (await sql.query('SELECT 1 FROM faucet.depositors WHERE agent_id = $1', [creatorAgent.id]))
          .rowCount === 1,
      {
        timeoutMs: 10_000,
      },
    );
    // The gateway's SSE feed reads escrow events through its own ordered consumers.
    expect(await firstEventFrame(creatorAgent.api_key)).toContain(escrowId);
    // Nothing any app did was refused by the broker: the rendered permissions are complete.
    for (const service of Object.values(system.services))
      expect(service.output.join('\n')).not.toMatch(/Permissions Violation/i);
  }, 30_000);

  it("the dashboard's operator routes work as the gateway user: balances, saga, streams, dead letters", async () => {
    for (const route of ['/admin/accounts', '/admin/deadlines', '/admin/streams', '/admin/dead-letters']) {
      const answer = await http('GET', route, undefined, ADMIN_API_KEY);
      expect([route, answer.status]).toEqual([route, 200]);
    }
    expect((await http('POST', '/admin/dead-letters/999999/redrive', {}, ADMIN_API_KEY)).status).toBe(404);
    for (const service of Object.values(system.services))
      expect(service.output.join('\n')).not.toMatch(/Permissions Violation/i);
  }, 30_000);

  it('ops may send casino.cmd.credit: the broker lets it through to casino', async () => {
    const ops = await connectAs('ops');
    const reply = await ops.request(
      p.subject(casinoCommands.credit),
      JSON.stringify({ agentId: 'ag_000000000001', amountMicros: '1', reference: 'ops-probe' }),
      { timeout: 5_000 },
    );
    // An unknown agent is the casino's answer, not the broker's refusal: the credit reached casino.
    expect(reply.string()).toMatch(/agent_not_found|account_not_found/);
  });

  it('the ops CLI works as the ops user and is refused without credentials', async () => {
    const env = { NATS_PREFIX: prefix, DATABASE_URL: database.url };
    const streams = await runOps(['streams'], { ...env, ...server.envFor('ops') });
    expect(streams).toMatchObject({ code: 0 });
    expect(streams.stdout).toContain(`${prefix}_CASINO_EVENTS`);
    const stranger = await runOps(['streams'], { ...env, NATS_URL: server.url });
    expect(stranger.code).toBe(2);
    expect(stranger.stderr).toMatch(/Authorization Violation/i);
  }, 30_000);

  /** The first SSE frame of the agent's escrow feed, replayed from the start of the stream. */
  async function firstEventFrame(apiKey: string): Promise<string> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 10_000);
    try {
      const response = await fetch(`${system.gatewayUrl}/escrow/events/stream`, {
        headers: { authorization: `Bearer ${apiKey}`, 'last-event-id': '0' },
        signal: abort.signal,
      });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      let text = '';
      while (!/\ndata:/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
      return text;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  async function http(
    method: string,
    path: string,
    body?: unknown,
    bearer?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${system.gatewayUrl}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }
});

function collectErrors(connection: NatsConnection): string[] {
  const errors: string[] = [];
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'error')
        errors.push(String((status as { error?: unknown }).error ?? JSON.stringify(status)));
    }
  })();
  return errors;
}

/** Runs the built ops CLI (`npm run ops`) with only the given environment. */
function runOps(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(workspaceRoot(), 'dist/apps/ops/src/main.js'), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
