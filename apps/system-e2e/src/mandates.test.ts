import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  createTestDatabase,
  sleep,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  workspaceRoot,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent, type Answer } from './api-client.js';

const ADMIN_API_KEY = 'mandates-e2e-admin-key-0123456789';
/** Small, so the revocation test can wait it out; the cache still serves repeated requests. */
const AUTH_CACHE_TTL_MS = 700;

/**
 * Sub-keys and spending mandates (issue #22, ADR 0019), end to end over two gateways and two
 * casinos sharing one database and bus: the mandate is decided in casino's ledger transaction,
 * so concurrent spends through different replicas still never overrun it.
 */
describe('scoped keys with spending mandates', () => {
  let database: TestDatabase;
  let system: TestSystem;
  const extra: ServiceProcess[] = [];
  let gateways: ApiClient[];
  let api: ApiClient;
  let owner: Agent;
  let bob: Agent;
  let carol: Agent;

  const inHours = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();
  const createKey = (body: Record<string, unknown>, key = owner.apiKey, client = api) =>
    client.call('POST', '/api/v1/auth/keys', {
      key,
      body: { max_per_transaction_usd: 2, max_per_day_usd: 10, expires_at: inHours(1), ...body },
      headers: { 'idempotency-key': randomUUID() },
    });
  const subKey = async (body: Record<string, unknown>): Promise<{ keyId: string; apiKey: string }> => {
    const answer = await createKey(body);
    expect(answer.status).toBe(201);
    return { keyId: answer.body.key_id as string, apiKey: answer.body.api_key as string };
  };
  const pay = (key: string, to: string, amountUsd: number, client = api): Promise<Answer> =>
    client.call('POST', '/api/v1/pay', {
      key,
      body: { to_agent_id: to, amount_usd: amountUsd },
      headers: { 'idempotency-key': randomUUID() },
    });
  const escrow = (
    key: string,
    to: string,
    amountUsd: number,
    client = api,
    idempotencyKey: string = randomUUID(),
  ): Promise<Answer> =>
    client.call('POST', '/escrow/create', {
      key,
      body: { amount_usd: amountUsd, description: 'mandated work', counterparty_agent_id: to },
      headers: { 'idempotency-key': idempotencyKey },
    });
  /**
   * An escrow create that ends in its outcome: a 503 (casino answered the hold after escrow's
   * hold timeout, on a busy machine) means "recorded, funding pending", and the API's rule is to
   * retry with the same Idempotency-Key, which answers the outcome once the hold is decided.
   */
  const settledEscrow = async (
    key: string,
    to: string,
    amountUsd: number,
    client: ApiClient,
  ): Promise<Answer> => {
    const idempotencyKey = randomUUID();
    for (let attempt = 1; ; attempt += 1) {
      const answer = await escrow(key, to, amountUsd, client, idempotencyKey);
      if (answer.status !== 503 || attempt >= 30) return answer;
      await sleep(500);
    }
  };
  const keys = async () =>
    (await api.get('/api/v1/auth/keys', owner.apiKey)).body.keys as Array<Record<string, unknown>>;

  beforeAll(async () => {
    database = await createTestDatabase('mandates');
    const env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: testNatsPrefix(),
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      AUTH_CACHE_TTL_MS: String(AUTH_CACHE_TTL_MS),
    };
    system = await startSystem(env, ['casino', 'escrow', 'gateway']);
    // A second casino and a second gateway: the race below goes through both of each.
    for (const app of ['casino', 'gateway'] as const) {
      const replica = await spawnService(app, { env });
      await replica.waitUntilReady();
      extra.push(replica);
    }
    gateways = [new ApiClient(system.gatewayUrl), new ApiClient(extra[1]!.url)];
    api = gateways[0]!;
    [owner, bob, carol] = await Promise.all([api.register(), api.register(), api.register()]);
    await api.credit(ADMIN_API_KEY, owner.agentId, 100);
  }, 120_000);

  afterAll(async () => {
    for (const replica of extra) await replica.stop();
    await system?.stop();
    await database?.drop();
  });

  it('creates a sub-key shown once; lists keys without secrets; a sub-key cannot manage keys', async () => {
    const created = await createKey({
      name: 'shopper',
      allowed_payees: [bob.agentId],
      allowed_actions: ['pay'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      key_id: expect.stringMatching(/^key_[0-9a-f]{16}$/),
      api_key: expect.stringMatching(/^sk_live_[0-9a-f]{48}$/),
      agent_id: owner.agentId,
      name: 'shopper',
      max_per_transaction_usd: 2,
      max_per_day_usd: 10,
      allowed_payees: [bob.agentId],
      allowed_actions: ['pay'],
      status: 'active',
      spent_last_24h_usd: 0,
      remaining_today_usd: 10,
    });
    const listed = await api.get('/api/v1/auth/keys', owner.apiKey);
    expect(listed.status).toBe(200);
    const text = JSON.stringify(listed.body);
    expect(text).toContain(created.body.key_id as string);
    expect(text).not.toContain(created.body.api_key as string);
    expect(text).not.toMatch(/sk_live_|hash/);

    const subKeyValue = created.body.api_key as string;
    // The sub-key authenticates as its agent…
    expect(await api.balanceUsd(subKeyValue)).toBe(100);
    // …but cannot mint, list or revoke keys.
    for (const answer of [
      await createKey({}, subKeyValue),
      await api.get('/api/v1/auth/keys', subKeyValue),
      await api.call('DELETE', `/api/v1/auth/keys/${created.body.key_id as string}`, { key: subKeyValue }),
    ])
      expect(answer).toMatchObject({ status: 403, body: { error: 'sub_key_not_allowed' } });
    expect((await keys()).length).toBe(1);
  });

  it('refuses bad mandates with 400 invalid_mandate and writes nothing', async () => {
    const before = (await keys()).length;
    const bad: Array<Record<string, unknown>> = [
      { max_per_transaction_usd: undefined },
      { max_per_transaction_usd: 0 },
      { max_per_day_usd: 'ten' },
      { max_per_transaction_usd: 20, max_per_day_usd: 10 },
      { expires_at: '2020-01-01T00:00:00Z' },
      { expires_at: 'tomorrow' },
      { expires_at: inHours(24 * 400) },
      { allowed_payees: ['bob'] },
      { allowed_payees: [owner.agentId] },
      { allowed_actions: [] },
      { allowed_actions: ['withdraw'] },
      { name: 'x'.repeat(65) },
    ];
    for (const body of bad) {
      const answer = await createKey(body);
      expect({ body, status: answer.status, error: answer.body.error }).toEqual({
        body,
        status: 400,
        error: 'invalid_mandate',
      });
    }
    expect((await keys()).length).toBe(before);
  });

  it('funds exactly 10 of 50 concurrent $1 escrows on a $10/day key, across two gateways and two casinos', async () => {
    const key = await subKey({ max_per_transaction_usd: 1, max_per_day_usd: 10 });
    const before = await api.balanceUsd(owner.apiKey);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        settledEscrow(key.apiKey, bob.agentId, 1, gateways[index % 2]!),
      ),
    );
    const funded = answers.filter((answer) => answer.status === 201);
    const refused = answers.filter((answer) => answer.status !== 201);
    expect(funded.length).toBe(10);
    for (const answer of refused)
      expect(answer).toMatchObject({
        status: 403,
        body: { error: 'mandate_exceeded', limit: 'per_day', limit_usd: 10, remaining_usd: 0 },
      });
    expect(await api.balanceUsd(owner.apiKey)).toBe(before - 10);
    const listed = (await keys()).find((entry) => entry.key_id === key.keyId)!;
    expect(listed).toMatchObject({ spent_last_24h_usd: 10, remaining_today_usd: 0 });
    // The main key is not bound by the sub-key's mandate.
    expect((await escrow(owner.apiKey, bob.agentId, 1)).status).toBe(201);
    const check = await api.get('/admin/ledger/check', ADMIN_API_KEY);
    expect(check.body).toMatchObject({ ok: true, violations: [] });
  }, 90_000);

  it('refuses an amount above max_per_transaction_usd, saying which limit and what remains', async () => {
    const key = await subKey({ max_per_transaction_usd: 2, max_per_day_usd: 5 });
    const before = await api.balanceUsd(owner.apiKey);
    expect(await pay(key.apiKey, bob.agentId, 2.5)).toMatchObject({
      status: 403,
      body: { error: 'mandate_exceeded', limit: 'per_transaction', limit_usd: 2, remaining_usd: 2 },
    });
    expect(await escrow(key.apiKey, bob.agentId, 2.01)).toMatchObject({
      status: 403,
      body: { error: 'mandate_exceeded', limit: 'per_transaction' },
    });
    expect((await pay(key.apiKey, bob.agentId, 2)).status).toBe(201);
    expect((await pay(key.apiKey, bob.agentId, 2)).status).toBe(201);
    expect(await pay(key.apiKey, bob.agentId, 1.5)).toMatchObject({
      status: 403,
      body: { error: 'mandate_exceeded', limit: 'per_day', limit_usd: 5, remaining_usd: 1 },
    });
    expect(await api.balanceUsd(owner.apiKey)).toBe(before - 4);
  });

  it('refuses payees outside allowed_payees and actions outside allowed_actions', async () => {
    const onlyBob = await subKey({ allowed_payees: [bob.agentId] });
    const before = await api.balanceUsd(owner.apiKey);
    expect(await pay(onlyBob.apiKey, carol.agentId, 1)).toMatchObject({
      status: 403,
      body: { error: 'mandate_payee_not_allowed' },
    });
    expect(await escrow(onlyBob.apiKey, carol.agentId, 1)).toMatchObject({
      status: 403,
      body: { error: 'mandate_payee_not_allowed' },
    });
    expect(await api.balanceUsd(owner.apiKey)).toBe(before);
    expect((await pay(onlyBob.apiKey, bob.agentId, 1)).status).toBe(201);

    const payOnly = await subKey({ allowed_actions: ['pay'] });
    expect(await escrow(payOnly.apiKey, bob.agentId, 1)).toMatchObject({
      status: 403,
      body: { error: 'mandate_action_not_allowed' },
    });
    const escrowOnly = await subKey({ allowed_actions: ['escrow_create'] });
    expect(await pay(escrowOnly.apiKey, bob.agentId, 1)).toMatchObject({
      status: 403,
      body: { error: 'mandate_action_not_allowed' },
    });
    const created = await escrow(escrowOnly.apiKey, bob.agentId, 1);
    expect(created.status).toBe(201);
    // Releasing is another action: refused by this key, allowed to the main key.
    const release = `/escrow/release/${created.body.escrow_id as string}`;
    expect(await api.post(release, {}, escrowOnly.apiKey)).toMatchObject({
      status: 403,
      body: { error: 'mandate_action_not_allowed' },
    });
    expect((await api.post(release, {}, owner.apiKey)).status).toBe(200);
    // Job awards lock money through the market, which carries no key id: no sub-key may award;
    // paying a race's winner is a release. Both refused by the gateway before any command.
    for (const [path, body] of [
      ['/jobs/job_0123456789abcdef/award', { bid_id: 'bid_0123456789abcdef' }],
      ['/jobs/job_0123456789abcdef/release', {}],
    ] as const)
      expect(await api.post(path, body, escrowOnly.apiKey)).toMatchObject({
        status: 403,
        body: { error: 'mandate_action_not_allowed' },
      });
    expect(await api.balanceUsd(owner.apiKey)).toBe(before - 2);
  });

  it('refuses an expired key', async () => {
    const answer = await createKey({ expires_at: new Date(Date.now() + 3_000).toISOString() });
    expect(answer.status).toBe(201);
    const key = answer.body.api_key as string;
    expect((await pay(key, bob.agentId, 0.5)).status).toBe(201);
    await sleep(Date.parse(answer.body.expires_at as string) - Date.now() + 100);
    const before = await api.balanceUsd(owner.apiKey);
    expect(await pay(key, bob.agentId, 0.5)).toMatchObject({ status: 401, body: { error: 'key_expired' } });
    expect(await api.get('/api/v1/auth/balance', key)).toMatchObject({
      status: 401,
      body: { error: 'key_expired' },
    });
    expect(await api.balanceUsd(owner.apiKey)).toBe(before);
    const listed = (await keys()).find((entry) => entry.key_id === answer.body.key_id)!;
    expect(listed.status).toBe('expired');
  }, 20_000);

  it(`refuses a revoked key's money at once, and every request within AUTH_CACHE_TTL_MS (${AUTH_CACHE_TTL_MS} ms)`, async () => {
    const key = await subKey({});
    // Warm the second gateway's cache with the key.
    expect((await gateways[1]!.get('/api/v1/auth/balance', key.apiKey)).status).toBe(200);
    const revoked = await api.call('DELETE', `/api/v1/auth/keys/${key.keyId}`, { key: owner.apiKey });
    expect(revoked).toMatchObject({ status: 200, body: { key_id: key.keyId, status: 'revoked' } });
    const before = await api.balanceUsd(owner.apiKey);
    // The cached gateway still knows the key, but casino refuses the money move in its transaction.
    expect(await pay(key.apiKey, bob.agentId, 1, gateways[1])).toMatchObject({
      status: 401,
      body: { error: 'key_revoked' },
    });
    expect(await escrow(key.apiKey, bob.agentId, 1, gateways[1])).toMatchObject({
      status: 401,
      body: { error: 'key_revoked' },
    });
    await sleep(AUTH_CACHE_TTL_MS + 50);
    for (const gateway of gateways)
      expect(await gateway.get('/api/v1/auth/balance', key.apiKey)).toMatchObject({
        status: 401,
        body: { error: 'key_revoked' },
      });
    expect(await api.balanceUsd(owner.apiKey)).toBe(before);
    // Revoking again changes nothing; an unknown or another agent's key is not found.
    expect((await api.call('DELETE', `/api/v1/auth/keys/${key.keyId}`, { key: owner.apiKey })).status).toBe(
      200,
    );
    expect(await api.call('DELETE', `/api/v1/auth/keys/${key.keyId}`, { key: bob.apiKey })).toMatchObject({
      status: 404,
      body: { error: 'key_not_found' },
    });
  });
  it('MCP: a host configured with a sub-key pays within its mandate; key tools need the main key', async () => {
    const connect = async (apiKey: string): Promise<Client> => {
      const transport = new StreamableHTTPClientTransport(new URL(`${system.gatewayUrl}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${apiKey}` } },
      });
      const client = new Client({ name: 'mandates-e2e', version: '1.0.0' });
      await client.connect(transport);
      return client;
    };
    const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => {
      const result = (await client.callTool({ name, arguments: args })) as {
        isError?: boolean;
        content: Array<{ type: string; text: string }>;
      };
      return {
        isError: result.isError === true,
        body: JSON.parse(result.content.find((item) => item.type === 'text')!.text) as Record<
          string,
          unknown
        >,
      };
    };
    const main = await connect(owner.apiKey);
    try {
      const { tools } = await main.listTools();
      for (const name of ['create_key', 'list_keys', 'revoke_key', 'pay_agent'])
        expect(tools.find((tool) => tool.name === name)?.outputSchema).toBeDefined();
      const created = await call(main, 'create_key', {
        max_per_transaction_usd: 1,
        max_per_day_usd: 1.5,
        expires_at: inHours(1),
        allowed_actions: ['pay'],
      });
      expect(created).toMatchObject({
        isError: false,
        body: { key_id: expect.any(String), api_key: expect.any(String) },
      });
      const bot = await connect(created.body.api_key as string);
      try {
        const paid = await call(bot, 'pay_agent', {
          to_agent_id: bob.agentId,
          amount_usd: 1,
          idempotency_key: randomUUID(),
        });
        expect(paid).toMatchObject({ isError: false, body: { amount_usd: 1, key_id: created.body.key_id } });
        expect(await call(bot, 'pay_agent', { to_agent_id: bob.agentId, amount_usd: 1 })).toMatchObject({
          isError: true,
          body: { error: 'mandate_exceeded', limit: 'per_day', remaining_usd: 0.5 },
        });
        expect(await call(bot, 'list_keys')).toMatchObject({
          isError: true,
          body: { error: 'sub_key_not_allowed' },
        });
        const listed = await call(main, 'list_keys');
        expect(listed.isError).toBe(false);
        expect(JSON.stringify(listed.body)).not.toContain(created.body.api_key as string);
        expect(await call(main, 'revoke_key', { key_id: created.body.key_id })).toMatchObject({
          isError: false,
          body: { status: 'revoked' },
        });
        expect(await call(bot, 'pay_agent', { to_agent_id: bob.agentId, amount_usd: 0.5 })).toMatchObject({
          isError: true,
          body: { error: 'key_revoked' },
        });
      } finally {
        await bot.close();
      }
    } finally {
      await main.close();
    }
  });
  it('ops verify finds the keys projection equal to its replay, and ops replay rebuilds it without changing a figure', async () => {
    const env = { DATABASE_URL: database.url, NATS_URL: testNatsUrl(), NATS_PREFIX: testNatsPrefix() };
    const listed = await keys();
    const verified = await ops(['verify', 'casino', '--grace', '0'], env);
    expect({ code: verified.code, output: verified.output }).toEqual({
      code: 0,
      output: expect.stringMatching(/no violations/),
    });
    const replayed = await ops(['replay', 'casino'], env);
    expect({ code: replayed.code, output: replayed.output }).toEqual({ code: 0, output: expect.any(String) });
    expect(await keys()).toEqual(listed);
  }, 120_000);
});

/** Runs the built ops CLI to completion (bounded), as an operator would. */
function ops(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [path.join(workspaceRoot(), 'dist/apps/ops/src/main.js'), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ops ${args.join(' ')} did not finish in time\n${output}`));
    }, 90_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
