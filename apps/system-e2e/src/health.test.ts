import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  spawnService,
  TcpProxy,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@pf/testing';

interface Health {
  status: string;
  checks: { postgres: string; nats: string; jetstream: string };
}

/**
 * Readiness follows the dependencies: each one is put behind a TCP proxy that the test cuts
 * and restores, so the shared Postgres and NATS other suites use are never stopped.
 */
describe('GET /health readiness', () => {
  let database: TestDatabase;
  let casino: ServiceProcess;
  let postgresProxy: TcpProxy;
  let natsProxy: TcpProxy;
  const prefix = testNatsPrefix();

  async function health(): Promise<{ status: number; body: Health }> {
    const response = await fetch(`${casino.url}/health`);
    return { status: response.status, body: (await response.json()) as Health };
  }

  beforeAll(async () => {
    database = await createTestDatabase('health');
    postgresProxy = TcpProxy.forUrl(database.url);
    natsProxy = TcpProxy.forUrl(testNatsUrl());
    await postgresProxy.start();
    await natsProxy.start();
    casino = await spawnService('casino', {
      env: {
        DATABASE_URL: postgresProxy.rewrite(database.url),
        NATS_URL: natsProxy.rewrite(testNatsUrl()),
        NATS_PREFIX: prefix,
        HEALTH_CHECK_TIMEOUT_MS: '500',
      },
    });
    await casino.waitUntilReady();
  }, 30_000);

  afterAll(async () => {
    await casino?.kill();
    await postgresProxy?.stop();
    await natsProxy?.stop();
    await database?.drop();
    const nats = await connectTestNats();
    await deletePrefixedStreams(nats, prefix)
      .catch(() => undefined)
      .finally(() => nats.close());
  });

  it('is ready when Postgres, NATS and the JetStream streams answer', async () => {
    expect(await health()).toEqual({
      status: 200,
      body: expect.objectContaining({
        status: 'ok',
        checks: { postgres: 'up', nats: 'up', jetstream: 'up' },
      }),
    });
    const live = await fetch(`${casino.url}/health/live`);
    expect(live.status).toBe(200);
  });

  it('goes unready when Postgres is unreachable and recovers when it is back', async () => {
    await postgresProxy.cut();
    const down = await waitFor('postgres down', async () => {
      const result = await health();
      return result.status === 503 ? result : undefined;
    });
    expect(down.body).toMatchObject({ status: 'unavailable', checks: { postgres: 'down', nats: 'up' } });
    expect((await fetch(`${casino.url}/health/live`)).status).toBe(200);

    await postgresProxy.restore();
    const up = await waitFor(
      'postgres back',
      async () => ((await health()).status === 200 ? true : undefined),
      { timeoutMs: 15_000 },
    );
    expect(up).toBe(true);
  });

  it('goes unready when NATS is unreachable and recovers when it is back', async () => {
    await natsProxy.cut();
    const down = await waitFor('nats down', async () => {
      const result = await health();
      return result.status === 503 ? result : undefined;
    });
    expect(down.body).toMatchObject({ status: 'unavailable', checks: { postgres: 'up', nats: 'down' } });

    await natsProxy.restore();
    const up = await waitFor('nats back', async () => ((await health()).status === 200 ? true : undefined), {
      timeoutMs: 15_000,
    });
    expect(up).toBe(true);
  });
});
