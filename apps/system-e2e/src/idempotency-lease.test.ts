import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  createTestDatabase,
  sleep,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';

const COMMAND_TIMEOUT_MS = 2_000;
/** COMMAND_TIMEOUT_MS × 2 sequential commands + 1 s margin (apps/gateway/src/config.ts). */
const EXPECTED_LEASE_MS = 5_000;

/**
 * Issue #18 point 2: a gateway that died mid-request leaves its Idempotency-Key claimed; the
 * retry must run again about one request deadline later, not after a fixed minute.
 */
describe('idempotency lease after a gateway crash', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let restarted: ServiceProcess | undefined;
  let sql: pg.Client;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase('idemlease');
    env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: testNatsPrefix(),
      COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
    };
    system = await startSystem(env, ['casino', 'gateway']);
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
  }, 60_000);

  afterAll(async () => {
    system?.services.casino.child.kill('SIGCONT');
    await restarted?.stop();
    await sql?.end();
    await system?.stop();
    await database?.drop();
  });

  it('a retry runs again once the lease (from COMMAND_TIMEOUT_MS) ends, not after 60 s', async () => {
    const key = randomUUID();
    const register = (url: string) =>
      fetch(`${url}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: '{}',
      });

    // Casino frozen: the register command hangs, so the gateway holds the claim when it dies.
    system.services.casino.child.kill('SIGSTOP');
    const inFlight = register(system.gatewayUrl).catch(() => undefined);
    const claim = await waitFor(
      'the key claimed',
      async () =>
        (
          await sql.query(
            `SELECT extract(epoch FROM lease_until - created_at) * 1000 AS lease_ms FROM gateway.idempotency_records`,
          )
        ).rows[0],
      { timeoutMs: COMMAND_TIMEOUT_MS / 2, intervalMs: 10 },
    );
    const claimedAtMs = Date.now();
    await system.services.gateway.kill();
    await inFlight;
    system.services.casino.child.kill('SIGCONT');
    expect(Number(claim.lease_ms)).toBe(EXPECTED_LEASE_MS);

    restarted = await spawnService('gateway', { env });
    await restarted.waitUntilReady();
    const statuses: number[] = [];
    let answer: Response | undefined;
    while (Date.now() - claimedAtMs < 20_000) {
      answer = await register(restarted.url);
      statuses.push(answer.status);
      if (answer.status !== 409) break;
      await sleep(100);
    }
    const retriedAfterMs = Date.now() - claimedAtMs;
    expect(answer?.status).toBe(201);
    expect(statuses.slice(0, -1).every((status) => status === 409)).toBe(true);
    expect(retriedAfterMs).toBeLessThan(EXPECTED_LEASE_MS + 2_000);
  }, 60_000);
});
