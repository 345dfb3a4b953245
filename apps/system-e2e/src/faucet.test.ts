import pg from 'pg';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ADMIN_API_KEY = 'faucet-e2e-admin-key-0123456789';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/**
 * POST /faucet/claim and GET /faucet/stats through the gateway, against casino and faucet, with
 * the per-address limit on (1 a day). Two gateways share the system: one trusts a proxy's
 * X-Forwarded-For (so each test can claim from its own address) and leaves loopback clients
 * out of the limit (the default), one does not trust the header and counts loopback clients.
 */
describe('faucet over HTTP (gateway → faucet → casino)', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let trusting: ServiceProcess;
  let sql: pg.Client;
  const prefix = testNatsPrefix();
  let nextAddress = 1;

  const post = async (
    baseUrl: string,
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      headers: response.headers,
    };
  };
  const get = async (
    baseUrl: string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const response = await fetch(`${baseUrl}${path}`, { headers });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      headers: response.headers,
    };
  };
  /** A fresh client address, as a trusted proxy would report it. */
  const freshAddress = () => `10.0.${Math.floor(nextAddress / 250)}.${(nextAddress++ % 250) + 1}`;
  const claimFrom = (address: string, body: unknown) =>
    post(trusting.url, '/faucet/claim', body, { 'x-forwarded-for': address });
  const claim = (agentId: string, address = freshAddress()) =>
    claimFrom(address, { agent_casino_id: agentId });
  const register = async () => {
    const answer = await post(system.gatewayUrl, '/api/v1/auth/register', {});
    expect(answer.status).toBe(201);
    return { agentId: answer.body.agent_id as string, apiKey: answer.body.api_key as string };
  };

  beforeAll(async () => {
    database = await createTestDatabase('faucethttp');
    const env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      FAUCET_BUDGET_USD: '10.5',
      FAUCET_IP_LIMIT_PER_DAY: '1',
    };
    system = await startSystem({ ...env, FAUCET_LIMIT_LOOPBACK: 'true' }, ['casino', 'faucet', 'gateway']);
    trusting = await spawnService('gateway', { env: { ...env, TRUST_PROXY: 'true' } });
    await trusting.waitUntilReady();
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    await waitFor('faucet treasury funded', async () => (await claim('ag_000000000000')).status === 404, {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([system?.stop(), trusting?.stop()]);
    await sql?.end();
    const nats = await connectTestNats();
    await deletePrefixedStreams(nats, prefix).catch(() => undefined);
    await nats.close();
    await database?.drop();
  });

  it('credits $1: 200 {credited, claim_id, agent_id, message}, and the balance shows it', async () => {
    const agent = await register();
    const answer = await claim(agent.agentId);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ credited: 1, agent_id: agent.agentId, message: expect.any(String) });
    expect(answer.body.claim_id).toMatch(UUID);
    const balance = await get(system.gatewayUrl, '/api/v1/auth/balance', {
      authorization: `Bearer ${agent.apiKey}`,
    });
    expect(balance.body).toMatchObject({ balance_usd: 1 });
    expect((balance.body.recent_activity as Array<Record<string, unknown>>)[0]).toMatchObject({
      amount: 1,
      reason: 'faucet_claim',
      operation_id: answer.body.claim_id,
    });
  });

  it.each([
    ['no body', {}],
    ['not an agent id', { agent_casino_id: 'bob' }],
    ['upper-case hex', { agent_casino_id: 'ag_ABCDEF012345' }],
    ['a number', { agent_casino_id: 12 }],
    ['not JSON', '{"agent_casino_id":'],
  ])('400 invalid_request for %s', async (_name, body) => {
    const answer = await claimFrom(freshAddress(), body);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
  });

  it('404 agent_not_found, 409 already_claimed (with the claim id), 403 has_deposits', async () => {
    expect(await claim('ag_000000000000')).toMatchObject({ status: 404, body: { error: 'agent_not_found' } });

    const agent = await register();
    const first = await claim(agent.agentId);
    expect(first.status).toBe(200);
    expect(await claim(agent.agentId)).toMatchObject({
      status: 409,
      body: { error: 'already_claimed', claim_id: first.body.claim_id },
    });

    const depositor = await register();
    const credit = await post(
      system.gatewayUrl,
      '/admin/credit',
      { agent_id: depositor.agentId, amount_usd: 5, reference: `e2e-${depositor.agentId}` },
      { authorization: `Bearer ${ADMIN_API_KEY}` },
    );
    expect(credit.status).toBe(200);
    await waitFor(
      'faucet saw the deposit',
      async () =>
        (await sql.query('SELECT 1 FROM faucet.depositors WHERE agent_id = $1', [depositor.agentId]))
          .rowCount === 1,
    );
    expect(await claim(depositor.agentId)).toMatchObject({ status: 403, body: { error: 'has_deposits' } });
  });

  it('20 concurrent claims for one agent: one 200, nineteen 409', async () => {
    const agent = await register();
    const address = freshAddress();
    const answers = await Promise.all(Array.from({ length: 20 }, () => claim(agent.agentId, address)));
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 409)).toHaveLength(19);
  });

  it('one claim per address a day; refused requests do not use the allowance; the limit comes before the agent lookup', async () => {
    const address = freshAddress();
    const depositor = await register();
    await post(
      system.gatewayUrl,
      '/admin/credit',
      { agent_id: depositor.agentId, amount_usd: 1, reference: `e2e-ip-${depositor.agentId}` },
      { authorization: `Bearer ${ADMIN_API_KEY}` },
    );
    await waitFor(
      'faucet saw the deposit',
      async () =>
        (await sql.query('SELECT 1 FROM faucet.depositors WHERE agent_id = $1', [depositor.agentId]))
          .rowCount === 1,
    );
    expect((await claim('ag_000000000000', address)).status).toBe(404);
    expect((await claim(depositor.agentId, address)).status).toBe(403);
    expect((await claimFrom(address, { agent_casino_id: 'nope' })).status).toBe(400);

    const [first, second] = [await register(), await register()];
    expect((await claim(first.agentId, address)).status).toBe(200);
    const refused = await claim(second.agentId, address);
    expect(refused).toMatchObject({
      status: 429,
      body: { error: 'ip_rate_limited', retry_after_seconds: expect.any(Number) },
    });
    // Like rate_limited, it says when to come back in the header clients already read.
    expect(Number(refused.headers.get('retry-after'))).toBe(refused.body.retry_after_seconds);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(86_000);
    // The limit is checked before the agent is looked up (API.md's order).
    expect((await claim('ag_000000000000', address)).status).toBe(429);
    // The agent's own claim never counts against it: it learns it already claimed.
    expect((await claim(first.agentId, address)).status).toBe(409);
    expect((await claim(second.agentId)).status).toBe(200);
  });

  it('loopback clients (everything on one machine) are not limited by address by default; one claim per agent still holds', async () => {
    const agents = [await register(), await register(), await register()];
    const loopback = ['127.0.0.1', '::1', '127.0.0.1'];
    for (const [index, agent] of agents.entries())
      expect((await claim(agent.agentId, loopback[index])).status).toBe(200);
    expect(await claim(agents[0]!.agentId, '127.0.0.1')).toMatchObject({
      status: 409,
      body: { error: 'already_claimed' },
    });
    const rows = await sql.query("SELECT 1 FROM faucet.ip_claims WHERE client_ip IN ('127.0.0.1', '::1')");
    expect(rows.rowCount).toBe(0);
  });

  it('without TRUST_PROXY a spoofed X-Forwarded-For does not get around the limit', async () => {
    const [first, second] = [await register(), await register()];
    expect((await post(system.gatewayUrl, '/faucet/claim', { agent_casino_id: first.agentId })).status).toBe(
      200,
    );
    const spoofed = await post(
      system.gatewayUrl,
      '/faucet/claim',
      { agent_casino_id: second.agentId },
      { 'x-forwarded-for': '203.0.113.7' },
    );
    expect(spoofed).toMatchObject({ status: 429, body: { error: 'ip_rate_limited' } });
  });

  it('503 faucet_empty once the budget is spent; stats add up', async () => {
    const before = await get(system.gatewayUrl, '/faucet/stats');
    expect(before.status).toBe(200);
    expect(Object.keys(before.body).sort()).toEqual([
      'remaining_budget_usd',
      'total_agents',
      'total_claims',
      'total_value_usd',
    ]);
    const claimable = Math.floor(before.body.remaining_budget_usd as number);
    for (let index = 0; index < claimable; index += 1)
      expect((await claim((await register()).agentId)).status).toBe(200);
    const empty = await claim((await register()).agentId);
    expect(empty).toMatchObject({ status: 503, body: { error: 'faucet_empty' } });

    const after = await get(system.gatewayUrl, '/faucet/stats');
    const total = (before.body.total_claims as number) + claimable;
    expect(after.body).toEqual({
      total_claims: total,
      total_agents: total,
      total_value_usd: total,
      remaining_budget_usd: 0.5,
    });
  });
});
