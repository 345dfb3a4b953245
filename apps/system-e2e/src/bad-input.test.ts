import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';
import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent, type Answer } from './api-client.js';

const ADMIN_API_KEY = 'bad-input-admin-key-0123456789';

/** Sends raw bytes (what fetch refuses to send) and parses the status line and JSON body. */
async function rawRequest(
  port: number,
  bytes: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
  const [head = '', body = ''] = text.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) as Record<string, unknown> };
}

/**
 * Issue #18 point 3: input that used to reach a 500 (or a non-API error shape). Every one is a
 * 4xx `{error, message}` with a snake_case code, and nothing is written.
 */
describe('bad input never reaches a 500 and writes nothing', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let sql: pg.Client;
  let creator: Agent;
  let worker: Agent;

  const writes = async () =>
    (
      await sql.query(
        `SELECT (SELECT count(*) FROM casino.events)::int AS casino, (SELECT count(*) FROM escrow.events)::int AS escrow,
                (SELECT count(*) FROM gateway.idempotency_records)::int AS idempotency`,
      )
    ).rows[0];
  const expectRefused = async (
    call: () => Promise<Answer>,
    status: number,
    error: string,
  ): Promise<Answer> => {
    const before = await writes();
    const answer = await call();
    expect({ status: answer.status, error: answer.body.error }).toEqual({ status, error });
    expect(typeof answer.body.message).toBe('string');
    expect(await writes()).toEqual(before);
    return answer;
  };
  const strongKey = () => ({ 'idempotency-key': randomUUID() });

  beforeAll(async () => {
    database = await createTestDatabase('badinput');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: testNatsPrefix(),
        ADMIN_API_KEY,
        RATE_LIMIT_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      },
      ['casino', 'escrow', 'gateway'],
    );
    api = new ApiClient(system.gatewayUrl);
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    [creator, worker] = await Promise.all([api.register(), api.register()]);
    await api.credit(ADMIN_API_KEY, creator.agentId, 10);
  }, 90_000);

  afterAll(async () => {
    await sql?.end();
    await system?.stop();
    await database?.drop();
  });

  it.each([
    ['a 20,000-deep array', `${'['.repeat(20_000)}${']'.repeat(20_000)}`],
    ['a 10,000-deep object', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`],
    ['an agent_name 100 levels deep', `{"agent_name":${'['.repeat(100)}${']'.repeat(100)}}`],
  ])('deeply nested JSON with an Idempotency-Key (%s) is 400 invalid_request', async (_label, body) => {
    const answer = await expectRefused(
      () => api.call('POST', '/api/v1/auth/register', { body, headers: strongKey() }),
      400,
      'invalid_request',
    );
    expect(answer.body.message).toMatch(/nested/);
  });

  it.each([
    ['a NUL in agent_name', '/api/v1/auth/register', { agent_name: 'a\u0000b' }, false],
    ['a lone surrogate in agent_name', '/api/v1/auth/register', { agent_name: 'a\ud800b' }, false],
    ['a NUL in an object key', '/api/v1/auth/register', { ['x\u0000']: 1 }, false],
    [
      'a NUL in description',
      '/escrow/create',
      { amount_usd: 1, description: 'Label\u0000images', counterparty_agent_id: 'WORKER' },
      true,
    ],
    [
      'a lone low surrogate in description',
      '/escrow/create',
      { amount_usd: 1, description: 'Label \udc00 images', counterparty_agent_id: 'WORKER' },
      true,
    ],
    [
      'a NUL in reference',
      '/admin/credit',
      { agent_id: 'CREATOR', amount_usd: 1, reference: 'ref\u0000' },
      false,
    ],
  ])('%s is 400 invalid_request', async (_label, path, body, asCreator) => {
    const filled = JSON.parse(
      JSON.stringify(body).replace('WORKER', worker.agentId).replace('CREATOR', creator.agentId),
    ) as unknown;
    const key = path.startsWith('/admin') ? ADMIN_API_KEY : asCreator ? creator.apiKey : undefined;
    await expectRefused(
      () => api.call('POST', path, { body: filled, key, headers: strongKey() }),
      400,
      'invalid_request',
    );
  });

  it('a NUL in a path or query parameter is 400 invalid_request', async () => {
    await expectRefused(
      () => api.call('POST', '/escrow/complete/esc_%00', { body: {}, key: worker.apiKey }),
      400,
      'invalid_request',
    );
    await expectRefused(() => api.get('/escrow/esc_%00'), 400, 'invalid_request');
    await expectRefused(() => api.get('/escrow/pending?status=%00', creator.apiKey), 400, 'invalid_request');
  });

  it.each(['9999999999999999999', '9223372036854775808'])(
    'GET /api/v1/auth/ledger?cursor=%s (beyond bigint) is 400 invalid_request naming cursor',
    async (cursor) => {
      const answer = await expectRefused(
        () => api.get(`/api/v1/auth/ledger?cursor=${cursor}`, creator.apiKey),
        400,
        'invalid_request',
      );
      expect(answer.body.message).toMatch(/^cursor/);
      expect((await api.get('/api/v1/auth/ledger?cursor=9223372036854775807', creator.apiKey)).status).toBe(
        200,
      );
    },
  );

  it('an over-long counterparty_agent_id names the API field, not an internal one', async () => {
    const body = {
      amount_usd: 1,
      description: 'Label images',
      counterparty_agent_id: `ag_${'a'.repeat(300)}`,
    };
    const answer = await expectRefused(
      () => api.call('POST', '/escrow/create', { body, key: creator.apiKey }),
      400,
      'invalid_counterparty',
    );
    expect(answer.body.message).toContain('counterparty_agent_id');
    expect(answer.body.message).not.toMatch(/counterpartyId/);
  });

  it('an over-long escrow id in the path is 404 not_found or 414, without internal names', async () => {
    const tooLongForTheRouter = await expectRefused(
      () => api.call('POST', `/escrow/complete/esc_${'a'.repeat(300)}`, { body: {}, key: worker.apiKey }),
      414,
      'invalid_request',
    );
    expect(tooLongForTheRouter.body.message).not.toMatch(/escrowId/);
    const answer = await expectRefused(
      () => api.call('POST', `/escrow/complete/esc_${'a'.repeat(40)}`, { body: {}, key: worker.apiKey }),
      404,
      'not_found',
    );
    expect(answer.body.message).not.toMatch(/escrowId/);
  });

  it.each([
    ['a bad Content-Length', 'POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    ['a header without a colon', 'GET /health HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n'],
    ['a request line that is not HTTP', 'HELLO\r\n\r\n'],
  ])("Node's HTTP parser refusing %s answers 400 invalid_request", async (_label, bytes) => {
    const before = await writes();
    const answer = await rawRequest(system.services.gateway.port, bytes);
    expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(typeof answer.body.message).toBe('string');
    expect(await writes()).toEqual(before);
  });

  it('a URL the router cannot decode answers 400 invalid_request (already so; kept as a guard)', async () => {
    await expectRefused(() => api.get('/escrow/%zz'), 400, 'invalid_request');
    await expectRefused(
      () => api.call('POST', '/escrow/release/%zz', { body: {}, key: creator.apiKey }),
      400,
      'invalid_request',
    );
  });
});
