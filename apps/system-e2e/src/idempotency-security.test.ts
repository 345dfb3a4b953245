import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Answer } from './api-client.js';

const ADMIN_API_KEY = 'idem-security-admin-key-0123456789';
const run = promisify(execFile);

/**
 * Issue #14 point 1, ADR 0009: an idempotent replay never hands an API key to a stranger, and the
 * idempotency store keeps nothing in clear, so a database dump after real traffic holds no key.
 */
describe('idempotency keeps no secret and shares no response', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let sql: pg.Client;

  const register = (
    idempotencyKey: string,
    body: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) =>
    api.call('POST', '/api/v1/auth/register', {
      body,
      headers: { 'idempotency-key': idempotencyKey, ...headers },
    });
  const count = async (table: string) =>
    (await sql.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
  const writes = async () => ({
    agents: await count('casino.agents'),
    records: await count('gateway.idempotency_records'),
  });

  beforeAll(async () => {
    database = await createTestDatabase('idemsecurity');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: testNatsPrefix(),
        ADMIN_API_KEY,
        LOG_LEVEL: 'debug',
        RATE_LIMIT_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      },
      ['casino', 'escrow', 'gateway'],
    );
    api = new ApiClient(system.gatewayUrl);
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
  }, 90_000);

  afterAll(async () => {
    await sql?.end();
    await system?.stop();
    await database?.drop();
  });

  it("two callers, one guessable anonymous key: the second never receives the first caller's API key", async () => {
    const first = await register('register-once');
    const second = await register('register-once');
    expect(JSON.stringify(second.body)).not.toContain('sk_live_');
    if (first.status === 201) expect(JSON.stringify(second.body)).not.toContain(first.body.api_key as string);
    expect(second).toMatchObject({ status: 400, body: { error: 'weak_idempotency_key' } });
    // A made-up bearer token ("Bearer undefined" from a client that has not registered yet) is no scope of its own.
    const shared = await register('register-once', {}, { authorization: 'Bearer undefined' });
    expect(shared).toMatchObject({ status: 400, body: { error: 'weak_idempotency_key' } });
  });

  it('two callers, one strong key: a different request gets 422 without the body, a near guess gets its own agent', async () => {
    const key = randomUUID();
    const first = await register(key, { agent_name: 'first' });
    expect(first.status).toBe(201);
    const other = await register(key, { agent_name: 'second' });
    expect(other).toMatchObject({ status: 422, body: { error: 'idempotency_key_reused' } });
    expect(JSON.stringify(other.body)).not.toContain('sk_live_');
    const nearGuess = await register(`${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`, {
      agent_name: 'first',
    });
    expect(nearGuess.status).toBe(201);
    expect(nearGuess.body.api_key).not.toBe(first.body.api_key);
    const retry = await register(key, { agent_name: 'first' });
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
  });

  it.each([
    ['short', 'retry-1'],
    ['31 characters', 'k'.repeat(20) + '0123456789a'],
    ['long but trivial', 'a'.repeat(64)],
    ['long but 7 distinct characters', '1234567'.repeat(6)],
  ])('refuses a weak anonymous key (%s) with 400 and writes nothing', async (_label, key) => {
    const before = await writes();
    const answer = await register(key, { agent_name: 'weak' });
    expect(answer).toMatchObject({ status: 400, body: { error: 'weak_idempotency_key' } });
    expect(answer.body.message).toMatch(/32 characters/);
    expect(await writes()).toEqual(before);
  });

  it('after register, credits, an escrow lifecycle and replays, a pg_dump and the logs hold no sk_live_ and no key', async () => {
    const keys = {
      register: randomUUID(),
      worker: randomUUID(),
      credit: 'credit-1',
      create: 'job-1',
      complete: 'done-1',
      release: 'pay-1',
    };
    const creatorAnswer = await register(keys.register, { agent_name: 'dumped' });
    expect(creatorAnswer.status).toBe(201);
    expect((await register(keys.register, { agent_name: 'dumped' })).body).toEqual(creatorAnswer.body);
    const creatorKey = creatorAnswer.body.api_key as string;
    const worker = await register(keys.worker);
    const workerKey = worker.body.api_key as string;
    const workerId = worker.body.agent_id as string;

    const credit = { agent_id: creatorAnswer.body.agent_id, amount_usd: 10, reference: 'idem-dump-credit' };
    const twice = async (
      method: string,
      path: string,
      key: string,
      idempotencyKey: string,
      body: unknown = {},
    ): Promise<Answer> => {
      const first = await api.call(method, path, {
        key,
        body,
        headers: { 'idempotency-key': idempotencyKey },
      });
      const replay = await api.call(method, path, {
        key,
        body,
        headers: { 'idempotency-key': idempotencyKey },
      });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toEqual(first.body);
      return first;
    };
    expect((await twice('POST', '/admin/credit', ADMIN_API_KEY, keys.credit, credit)).status).toBe(200);
    const created = await twice('POST', '/escrow/create', creatorKey, keys.create, {
      amount_usd: 3,
      description: 'Label the images',
      counterparty_agent_id: workerId,
    });
    expect(created.status).toBe(201);
    const escrowId = created.body.escrow_id as string;
    expect(
      (
        await twice('POST', `/escrow/complete/${escrowId}`, workerKey, keys.complete, {
          result_summary: 'done',
        })
      ).status,
    ).toBe(200);
    expect((await twice('POST', `/escrow/release/${escrowId}`, creatorKey, keys.release)).status).toBe(200);
    expect(await api.balanceUsd(workerKey)).toBeCloseTo(2.97, 6);
    expect(await count('gateway.idempotency_records')).toBeGreaterThanOrEqual(7);

    const { stdout: dump } = await run('pg_dump', ['--dbname', database.url, '--no-owner'], {
      maxBuffer: 256 * 1024 * 1024,
    });
    expect(dump).toContain('idempotency_records');
    expect(dump).not.toContain('sk_live_');
    expect(dump).not.toContain(creatorKey.slice('sk_live_'.length));
    for (const key of [keys.register, keys.worker]) expect(dump).not.toContain(key);
    const logs = Object.values(system.services)
      .flatMap((service) => service.output)
      .join('\n');
    expect(logs).not.toContain('sk_live_');
    expect(logs).not.toContain(keys.register);
  });
});
