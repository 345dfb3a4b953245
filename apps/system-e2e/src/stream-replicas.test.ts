import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { eventStreams } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  NatsServers,
  spawnService,
  testNatsPrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@pf/testing';

interface Health {
  status: string;
  checks: Record<string, string>;
}

/**
 * Stream replicas are configuration (issue #18, point 4): on a 3-node cluster with
 * NATS_STREAM_REPLICAS=3 every stream has three copies and survives losing the node that led
 * it; with one copy, losing that node makes the streams unavailable and /health says so
 * (`checks.jetstream: down`) instead of "ok". The cluster is the test's own nats-server processes.
 */
describe('JetStream stream replicas and /health on a 3-node cluster', () => {
  let servers: NatsServers;
  let database: TestDatabase;
  let nats: NatsConnection;
  const started: ServiceProcess[] = [];

  const startCasino = async (prefix: string, replicas: number): Promise<ServiceProcess> => {
    const casino = await spawnService('casino', {
      env: {
        DATABASE_URL: database.url,
        NATS_URL: servers.url,
        NATS_PREFIX: prefix,
        NATS_STREAM_REPLICAS: String(replicas),
        HEALTH_CHECK_TIMEOUT_MS: '1000',
      },
    });
    started.push(casino);
    await casino.waitUntilReady(40_000);
    return casino;
  };
  const streamInfo = async (prefix: string): Promise<StreamInfo> =>
    (await jetstreamManager(nats)).streams.info(`${prefix}_${eventStreams.casino.name}`);
  const health = async (casino: ServiceProcess): Promise<{ status: number; body: Health }> => {
    const response = await fetch(`${casino.url}/health`);
    return { status: response.status, body: (await response.json()) as Health };
  };
  const nodeIndexOf = (name: string | undefined): number => {
    const index = [0, 1, 2].find((candidate) => servers.nodeName(candidate) === name);
    if (index === undefined) throw new Error(`no node named ${name}`);
    return index;
  };

  beforeAll(async () => {
    servers = await NatsServers.start(3);
    database = await createTestDatabase('replicas');
    nats = await connectTestNats(servers.url);
  }, 60_000);

  afterAll(async () => {
    for (const casino of started) await casino.kill();
    await nats?.close().catch(() => undefined);
    await servers?.stop();
    await database?.drop();
  });

  it('with one copy, losing the node that holds a stream makes /health report JetStream down', async () => {
    const prefix = testNatsPrefix();
    const casino = await startCasino(prefix, 1);
    const info = await streamInfo(prefix);
    expect(info.config.num_replicas).toBe(1);
    expect((await health(casino)).body.checks).toEqual({ postgres: 'up', nats: 'up', jetstream: 'up' });

    const holder = nodeIndexOf(info.cluster?.leader);
    await servers.kill(holder);
    // Casino may have been connected to that very node: it first reports NATS down, then
    // reconnects to another node, where the stream (one copy, on the dead node) stays unavailable.
    const down = await waitFor(
      'health to notice',
      async () => {
        const answer = await health(casino);
        return answer.status === 503 && answer.body.checks.nats === 'up' ? answer : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(down.body).toMatchObject({
      status: 'unavailable',
      checks: { postgres: 'up', nats: 'up', jetstream: 'down' },
    });

    await servers.restart(holder);
    await waitFor(
      'health to recover',
      async () => ((await health(casino)).status === 200 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  }, 120_000);

  it('with NATS_STREAM_REPLICAS=3, every stream has three copies and survives losing its leader', async () => {
    await servers.waitForJetStream();
    const prefix = testNatsPrefix();
    const casino = await startCasino(prefix, 3);
    const info = await streamInfo(prefix);
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas).toHaveLength(2);

    await servers.kill(nodeIndexOf(info.cluster?.leader));
    const ready = await waitFor(
      'a new leader',
      async () => {
        const answer = await health(casino);
        return answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(ready.body.checks).toEqual({ postgres: 'up', nats: 'up', jetstream: 'up' });
    // The test's own connection may be reconnecting from the killed node: ask until it answers.
    const after = await waitFor(
      'stream info after the failover',
      () => streamInfo(prefix).catch(() => undefined),
      {
        timeoutMs: 20_000,
        intervalMs: 250,
      },
    );
    expect(after.cluster?.leader).not.toBe(info.cluster?.leader);
  }, 120_000);
});
