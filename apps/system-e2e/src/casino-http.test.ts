import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';

const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** The casino's HTTP contract (API.md "Casino accounts", "Operators") through the gateway. */
describe('casino routes through the gateway', () => {
  let database: TestDatabase;
  let system: TestSystem;

  async function call(
    method: string,
    path: string,
    options: { body?: string | object; key?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${system.gatewayUrl}${path}`, { method, headers, body });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      headers: response.headers,
    };
  }

  const register = async (body: object = {}) =>
    (await call('POST', '/api/v1/auth/register', { body })).body as {
      agent_id: string;
      api_key: string;
      referral_code: string;
    };
  const credit = (body: object) => call('POST', '/admin/credit', { body, key: ADMIN_KEY });

  beforeAll(async () => {
    database = await createTestDatabase('casinohttp');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: testNatsPrefix(),
        ADMIN_API_KEY: ADMIN_KEY,
        AUTH_CACHE_TTL_MS: '1000',
      },
      ['casino', 'gateway'],
    );
  }, 60_000);

  afterAll(async () => {
    await system?.stop();
    await database?.drop();
  });

  it('registers with {}, with no body, with {agent_name} and {referral_code}: flat and nested fields', async () => {
    const flat = await call('POST', '/api/v1/auth/register', { body: {} });
    expect(flat.status).toBe(201);
    expect(flat.body).toMatchObject({
      agent_id: expect.stringMatching(/^ag_[0-9a-f]{12}$/),
      api_key: expect.stringMatching(/^sk_live_[0-9a-f]{48}$/),
      referral_code: expect.stringMatching(/^ref_[0-9a-f]{8}$/),
      balance: 0,
      message: expect.any(String),
      next_steps: expect.any(Array),
    });
    expect(flat.body.agent).toMatchObject({ id: flat.body.agent_id, api_key: flat.body.api_key });

    expect((await call('POST', '/api/v1/auth/register')).status).toBe(201);
    expect(
      (await call('POST', '/api/v1/auth/register', { body: { agent_name: 'orchestrator' } })).status,
    ).toBe(201);
    const referred = await call('POST', '/api/v1/auth/register', {
      body: { referral_code: flat.body.referral_code },
    });
    expect(referred.body.referred_by).toBe(flat.body.agent_id);
    const unknownCode = await call('POST', '/api/v1/auth/register', { body: { referral_code: 'ref_nope' } });
    expect(unknownCode.status).toBe(201);
    expect(unknownCode.body.referred_by).toBeNull();
  });

  it.each([
    ['bad JSON', '{"agent_name": ', 400, 'invalid_request'],
    ['a JSON string', '"hello"', 400, 'invalid_request'],
    ['a wrong type', { agent_name: 42 }, 400, 'invalid_request'],
    ['an oversize body', { agent_name: 'x'.repeat(70_000) }, 413, 'invalid_request'],
  ])('refuses %s on register with %s %s', async (_, body, status, code) => {
    const reply = await call('POST', '/api/v1/auth/register', { body });
    expect(reply.status).toBe(status);
    expect(reply.body).toEqual({ error: code, message: expect.any(String) });
  });

  it('answers 401 unauthorized for a missing, malformed or unknown key, and never HTML', async () => {
    for (const key of [undefined, 'nonsense', `sk_live_${'a'.repeat(48)}`]) {
      const reply = await call('GET', '/api/v1/auth/balance', { key });
      expect(reply.status).toBe(401);
      expect(reply.body.error).toBe('unauthorized');
      expect(reply.headers.get('content-type')).toMatch(/application\/json/);
    }
    const unknownRoute = await call('GET', '/api/v1/nope');
    expect(unknownRoute).toMatchObject({ status: 404, body: { error: 'not_found' } });
    const undecodable = await call('GET', '/api/v1/%zz');
    expect(undecodable).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });

  it('credits through /admin/credit idempotently and shows balance, lifetime, activity and ledger', async () => {
    const agent = await register();
    const first = await credit({
      agent_id: agent.agent_id,
      amount_usd: '12.345678',
      reference: `r-${agent.agent_id}`,
    });
    expect(first).toMatchObject({ status: 200, body: { amount_usd: 12.345678, balance_usd: 12.345678 } });
    const again = await credit({
      agent_id: agent.agent_id,
      amount_usd: 12.345678,
      reference: `r-${agent.agent_id}`,
    });
    expect(again.body.balance_usd).toBe(12.345678);
    expect(
      (await credit({ agent_id: agent.agent_id, amount_usd: 1, reference: `r-${agent.agent_id}` })).body
        .error,
    ).toBe('reference_reused');

    const balance = await call('GET', '/api/v1/auth/balance', { key: agent.api_key });
    expect(balance.body).toMatchObject({
      agent_id: agent.agent_id,
      balance_usd: 12.345678,
      held_usd: 0,
      total_usd: 12.345678,
      available_usd: 12.345678,
      lifetime: {
        total_deposited: 12.345678,
        total_withdrawn: 0,
        total_escrowed: 0,
        total_earned: 0,
        total_fees: 0,
      },
    });
    expect(balance.body.recent_activity).toEqual([
      expect.objectContaining({
        type: 'deposit',
        amount: 12.345678,
        balance_after: 12.345678,
        reason: 'deposit',
        service: 'admin',
      }),
    ]);
    const ledger = await call('GET', '/api/v1/auth/ledger?limit=10', { key: agent.api_key });
    expect(ledger.body).toMatchObject({ agent_id: agent.agent_id, next_cursor: null });
    expect(ledger.body.entries).toHaveLength(1);
    expect((await call('GET', '/api/v1/auth/ledger?limit=0', { key: agent.api_key })).status).toBe(400);
    const stats = await call('GET', '/api/v1/auth/referral/stats', { key: agent.api_key });
    expect(stats.body).toMatchObject({
      agent_id: agent.agent_id,
      referral_code: agent.referral_code,
      referred_agents: 0,
      commission_earned_usd: 0,
    });
  });

  it.each([
    ['7 decimals', '1.0000001'],
    ['7 decimals as a number', 1.0000001],
    ['a negative amount', -5],
    ['zero', 0],
    ['NaN as a string', 'NaN'],
    ['Infinity as a string', 'Infinity'],
    ['an exponent string', '1e3'],
    ['a huge number', 1e300],
    ['above the maximum', 1_000_001],
    ['a boolean', true],
  ])('refuses %s with 400 invalid_amount and credits nothing', async (_, amount) => {
    const agent = await register();
    const reply = await credit({
      agent_id: agent.agent_id,
      amount_usd: amount,
      reference: `bad-${agent.agent_id}`,
    });
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe(typeof amount === 'boolean' ? 'invalid_request' : 'invalid_amount');
    const balance = await call('GET', '/api/v1/auth/balance', { key: agent.api_key });
    expect(balance.body.balance_usd).toBe(0);
  });

  it('refuses admin calls without the admin key and credits to unknown agents', async () => {
    const agent = await register();
    expect(
      (
        await call('POST', '/admin/credit', {
          body: { agent_id: agent.agent_id, amount_usd: 1, reference: 'x' },
          key: agent.api_key,
        })
      ).status,
    ).toBe(401);
    expect(
      (await credit({ agent_id: 'ag_000000000000', amount_usd: 1, reference: 'ghost' })).body.error,
    ).toBe('agent_not_found');
    const check = await call('GET', '/admin/ledger/check', { key: ADMIN_KEY });
    expect(check.body).toMatchObject({ ok: true, total_usd: 0, violations: [] });
  });
});
