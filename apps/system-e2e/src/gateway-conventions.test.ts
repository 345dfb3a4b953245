import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';

/** API.md "Conventions": Idempotency-Key on writes, rate limits. */
describe('gateway conventions', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let sql: pg.Client;

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${system.gatewayUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const agentCount = async () =>
    (await sql.query('SELECT count(*)::int AS n FROM casino.agents')).rows[0].n as number;

  beforeAll(async () => {
    database = await createTestDatabase('conventions');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: testNatsPrefix(),
        RATE_LIMIT_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_PER_KEY_PER_MINUTE: '30',
      },
      ['casino', 'gateway'],
    );
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
  }, 60_000);

  afterAll(async () => {
    await sql?.end();
    await system?.stop();
    await database?.drop();
  });

  it('returns the first response to a retried write with the same key, without doing the work again', async () => {
    const before = await agentCount();
    const key = randomUUID();
    const first = await post('/api/v1/auth/register', { agent_name: 'once' }, { 'idempotency-key': key });
    const firstBody = await first.text();
    const second = await post('/api/v1/auth/register', { agent_name: 'once' }, { 'idempotency-key': key });
    expect(second.status).toBe(first.status);
    expect(await second.text()).toBe(firstBody);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await agentCount()).toBe(before + 1);
  });

  it('refuses the same key with a different body (422) and accepts key order changes as the same body', async () => {
    const key = randomUUID();
    await post(
      '/api/v1/auth/register',
      { agent_name: 'a', referral_code: 'ref_00000000' },
      { 'idempotency-key': key },
    );
    const reordered = await post(
      '/api/v1/auth/register',
      { referral_code: 'ref_00000000', agent_name: 'a' },
      { 'idempotency-key': key },
    );
    expect(reordered.headers.get('idempotent-replayed')).toBe('true');
    const different = await post('/api/v1/auth/register', { agent_name: 'b' }, { 'idempotency-key': key });
    expect(different.status).toBe(422);
    expect(await different.json()).toMatchObject({ error: 'idempotency_key_reused' });
  });

  it('scopes keys to the API key: the same key under another Authorization is a new request', async () => {
    const before = await agentCount();
    await post(
      '/api/v1/auth/register',
      {},
      { 'idempotency-key': 'scoped', authorization: 'Bearer sk_live_' + 'a'.repeat(48) },
    );
    await post(
      '/api/v1/auth/register',
      {},
      { 'idempotency-key': 'scoped', authorization: 'Bearer sk_live_' + 'b'.repeat(48) },
    );
    expect(await agentCount()).toBe(before + 2);
  });

  it('race: 20 parallel identical writes with one key do the work once; the others replay or get 409', async () => {
    const before = await agentCount();
    const key = randomUUID();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        post('/api/v1/auth/register', { agent_name: 'racer' }, { 'idempotency-key': key }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((status) => status === 201 || status === 409)).toBe(true);
    const bodies = await Promise.all(
      responses.map((response) => response.json() as Promise<{ agent_id?: string; error?: string }>),
    );
    expect(new Set(bodies.filter((body) => body.agent_id).map((body) => body.agent_id)).size).toBe(1);
    expect(bodies.filter((body) => body.error).every((body) => body.error === 'request_in_progress')).toBe(
      true,
    );
    expect(await agentCount()).toBe(before + 1);
  });

  it('refuses an over-long key', async () => {
    const response = await post('/api/v1/auth/register', {}, { 'idempotency-key': 'x'.repeat(256) });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('limits requests per API key with 429 rate_limited and Retry-After', async () => {
    const key = `Bearer sk_live_${'c'.repeat(48)}`;
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let index = 0; index < 40; index += 1) {
      const response = await fetch(`${system.gatewayUrl}/api/v1/auth/balance`, {
        headers: { authorization: key },
      });
      statuses.push(response.status);
      if (response.status === 429) {
        retryAfter = response.headers.get('retry-after');
        expect(await response.json()).toMatchObject({ error: 'rate_limited' });
      }
    }
    expect(statuses.filter((status) => status === 401)).toHaveLength(30);
    expect(statuses.filter((status) => status === 429)).toHaveLength(10);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${system.gatewayUrl}/health`)).status).toBe(200);
  });
});
