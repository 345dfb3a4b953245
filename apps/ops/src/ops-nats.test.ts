import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import {
  casinoCommands,
  SubjectPrefix,
  type EventEnvelope,
  type RegisterReply,
  newApiKey,
} from '@pf/contracts';
import {
  CommandClient,
  defaultEventConsumerSettings,
  DurableEventConsumer,
  type ProcessedEventStore,
} from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  sleep,
  spawnService,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@pf/testing';
import { OpsProcess, runOps } from './testing.js';

/** The consumer side of the inbox, kept in memory: a row per (consumer, event id) once the handler succeeded. */
class MemoryInbox implements ProcessedEventStore {
  private readonly processed = new Set<string>();

  async runOnce(
    consumer: string,
    eventId: string,
    fn: (tx: unknown) => Promise<void>,
  ): Promise<'processed' | 'duplicate'> {
    const key = `${consumer}/${eventId}`;
    if (this.processed.has(key)) return 'duplicate';
    await fn(undefined);
    this.processed.add(key);
    return 'processed';
  }
}

/** `ops tail`, `streams`, `dlq` and `credit` against a real casino publishing to JetStream. */
describe('ops on NATS: tail, streams, dead letters, credit', () => {
  let database: TestDatabase;
  let casino: ServiceProcess;
  let nats: NatsConnection;
  let client: CommandClient;
  const prefix = testNatsPrefix();
  const subjects = new SubjectPrefix(prefix);
  const env = () => ({ DATABASE_URL: database.url, NATS_URL: testNatsUrl(), NATS_PREFIX: prefix });
  let agent: RegisterReply;
  const consumers: DurableEventConsumer[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('opsnats');
    casino = await spawnService('casino', { env: env() });
    await casino.waitUntilReady();
    nats = await connectTestNats();
    client = new CommandClient({ connection: nats, prefix: subjects, timeoutMs: 10_000 });
    agent = await client.request<RegisterReply>(casinoCommands.register, {
      apiKeySha256: newApiKey().apiKeySha256,
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop()));
    await casino?.stop();
    if (nats) {
      await deletePrefixedStreams(nats, prefix).catch(() => undefined);
      await nats.close();
    }
    await database?.drop();
  });

  it('credits an agent (the admin deposit), idempotently on the reference', async () => {
    const first = await runOps(['credit', agent.agentId, '12.5', '--reference', 'ops-1'], env());
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(
      new RegExp(
        `credited \\$12\\.5 to ${agent.agentId} \\(reference ops-1, transfer deposit:ops-1\\); available now \\$12\\.5`,
      ),
    );
    expect(first.code).toBe(0);
    const again = await runOps(['credit', agent.agentId, '12.5', '--reference', 'ops-1', '--json'], env());
    expect(JSON.parse(again.stdout)).toMatchObject({ availableMicros: '12500000' });

    const refused = await Promise.all([
      runOps(['credit', 'ag_000000000000', '1', '--reference', 'ops-x'], env()),
      runOps(['credit', agent.agentId, '1.0000001', '--reference', 'ops-y'], env()),
      runOps(['credit', agent.agentId, '1'], env()),
    ]);
    expect(refused.map((run) => run.code)).toEqual([2, 2, 2]);
    expect(refused[0]!.stderr).toMatch(/^ops: credit refused: agent_not_found/);
    expect(refused[1]!.stderr).toMatch(/^ops: usd .*6/);
    expect(refused[2]!.stderr).toMatch(/--reference is required/);
  });

  it('tails events published after it starts, one line each, or JSON', async () => {
    const tail = new OpsProcess(['tail', 'casino', '--count', '1'], env());
    const json = new OpsProcess(['tail', 'casino.events.funds_transferred', '--json', '--count', '1'], env());
    await tail.waitForLine('stderr', (line) => line.startsWith('following'));
    await json.waitForLine('stderr', (line) => line.startsWith('following'));
    await client.request(casinoCommands.credit, {
      agentId: agent.agentId,
      amountMicros: '1000000',
      reference: 'tail-1',
    });

    const line = await tail.waitForLine('stdout', (text) => text.includes('deposit:tail-1'));
    expect(line).toMatch(
      /^\S+Z casino\.events\.funds_transferred #\d+ op-deposit:tail-1@1 pos=\d+ id=[0-9a-f-]{36} \{.*"to":"ag_/,
    );
    const parsed = JSON.parse(
      await json.waitForLine('stdout', (text) => text.includes('deposit:tail-1')),
    ) as { stream: string; subject: string; envelope: EventEnvelope };
    expect(parsed).toMatchObject({
      stream: 'CASINO_EVENTS',
      subject: 'casino.events.funds_transferred',
      envelope: { type: 'funds_transferred', data: { transferId: 'deposit:tail-1' } },
    });
    expect(await tail.exited).toBe(0);
    expect(await json.exited).toBe(0);

    // From a position: the first event at or after it, found in the stream by its envelope position.
    const fromPosition = await runOps(
      ['tail', 'casino', '--from-position', String(parsed.envelope.position), '--json', '--count', '1'],
      env(),
      15_000,
    );
    expect(JSON.parse(fromPosition.stdout).envelope.id).toBe(parsed.envelope.id);
  });

  it('replays history: --count N prints N lines, and --since merges the services by time', async () => {
    const js = jetstream(nats);
    const manager = await jetstreamManager(nats);
    const stored = async () => {
      let total = 0;
      for (const name of ['CASINO_EVENTS', 'FAUCET_EVENTS', 'ESCROW_EVENTS'])
        total +=
          (await manager.streams.info(subjects.streamName(name)).catch(() => null))?.state.messages ?? 0;
      return total;
    };
    const credit = async (reference: string) => {
      const before = (await manager.streams.info(subjects.streamName('CASINO_EVENTS'))).state.last_seq;
      await client.request(casinoCommands.credit, {
        agentId: agent.agentId,
        amountMicros: '1000000',
        reference,
      });
      await waitFor(
        `${reference} published`,
        async () =>
          (await manager.streams.info(subjects.streamName('CASINO_EVENTS'))).state.last_seq > before,
      );
    };
    const probe = (n: number) =>
      js.publish(
        subjects.subject('faucet.events.tail_probe'),
        JSON.stringify({
          id: `00000000-0000-4000-8000-00000000000${n}`,
          type: 'tail_probe',
          stream: 'probe',
          version: n,
          position: n,
          occurred_at: new Date().toISOString(),
          correlation_id: null,
          causation_id: null,
          schema: 1,
          data: { n },
        }),
      );
    // Casino three times, then faucet three times, then casino again: by time, not by turns.
    for (const n of [1, 2, 3]) await credit(`since-${n}`);
    for (const n of [1, 2, 3]) await probe(n);
    await credit('since-4');

    const total = await stored();
    const since = await runOps(['tail', '--since', '10m', '--json', '--count', String(total)], env(), 15_000);
    const lines = since.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { stream: string; time: string });
    expect(lines).toHaveLength(total);
    const times = lines.map((line) => line.time);
    expect(times).toEqual([...times].sort());
    const services = lines.slice(-7).map((line) => line.stream);
    expect(services).toEqual([
      'CASINO_EVENTS',
      'CASINO_EVENTS',
      'CASINO_EVENTS',
      'FAUCET_EVENTS',
      'FAUCET_EVENTS',
      'FAUCET_EVENTS',
      'CASINO_EVENTS',
    ]);

    const one = await runOps(['tail', 'casino', '--from-position', '1', '--count', '1'], env(), 15_000);
    expect(one).toMatchObject({ code: 0, stderr: expect.not.stringMatching(/failed/) });
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    const two = await runOps(['tail', '--since', '10m', '--count', '2'], env(), 15_000);
    expect(two.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('marks ephemeral consumers (a running ops tail) in ops streams', async () => {
    const tail = new OpsProcess(['tail', 'casino'], env());
    try {
      await tail.waitForLine('stderr', (line) => line.startsWith('following'));
      const run = await runOps(['streams', '--json'], env());
      const { streams } = JSON.parse(run.stdout) as {
        streams: Array<{ contractName: string; consumers: Array<{ name: string; durable: boolean }> }>;
      };
      const casinoConsumers = streams.find((stream) => stream.contractName === 'CASINO_EVENTS')!.consumers;
      // The running tail's (and those of earlier tails the broker has not yet forgotten).
      expect(casinoConsumers.filter((consumer) => !consumer.durable).length).toBeGreaterThanOrEqual(1);
      const text = await runOps(['streams'], env());
      expect(text.stdout).toMatch(/\(ephemeral: an ops tail or SSE connection\): lag/);
    } finally {
      await tail.stop();
    }
  });

  it('shows streams and consumers', async () => {
    const run = await runOps(['streams', '--json'], env());
    expect(run.code).toBe(0);
    const { streams } = JSON.parse(run.stdout) as {
      streams: Array<{ contractName: string; exists: boolean; messages: number }>;
    };
    expect(streams.find((stream) => stream.contractName === 'CASINO_EVENTS')).toMatchObject({
      exists: true,
      messages: expect.any(Number),
    });
    expect(streams.find((stream) => stream.contractName === 'CASINO_EVENTS')!.messages).toBeGreaterThan(0);
    const text = await runOps(['streams'], env());
    expect(text.stdout).toMatch(new RegExp(`${prefix}_CASINO_EVENTS: \\d+ messages`));
  });

  it('redrives a dead letter: the failed consumer processes it once, the others skip it, the dead letter is gone', async () => {
    const js = jetstream(nats);
    const manager = await jetstreamManager(nats);
    const logger = pino({ level: 'silent' });
    const target = 'deposit:dlq-1';
    let failing = true;
    const handled = { failed: 0, flaky: 0, steady: 0 };
    const consumer = (durable: string, handler: (envelope: EventEnvelope) => Promise<void>) =>
      new DurableEventConsumer({
        js,
        manager,
        prefix: subjects,
        logger,
        inbox: new MemoryInbox(),
        stream: subjects.streamName('CASINO_EVENTS'),
        durable,
        pattern: 'casino.events.funds_transferred',
        handler: async (envelope) => handler(envelope),
        settings: {
          ...defaultEventConsumerSettings,
          maxDeliver: 1,
          fetchExpiresMs: 1_000,
          deliverFrom: 'new',
        },
      });
    const flaky = consumer('opstest__flaky', async (envelope) => {
      if (envelope.data.transferId !== target) return;
      if (failing) {
        handled.failed += 1;
        throw new Error('downstream is down');
      }
      handled.flaky += 1;
    });
    const steady = consumer('opstest__steady', async (envelope) => {
      if (envelope.data.transferId === target) handled.steady += 1;
    });
    for (const started of [flaky, steady]) {
      await started.start();
      consumers.push(started);
    }

    await client.request(casinoCommands.credit, {
      agentId: agent.agentId,
      amountMicros: '2000000',
      reference: 'dlq-1',
    });
    const listed = await waitFor(
      'the dead letter',
      async () => {
        const run = await runOps(['dlq', 'list', '--json'], env());
        return run.stdout.trim() === ''
          ? undefined
          : run.stdout
              .trim()
              .split('\n')
              .map((line) => JSON.parse(line) as { sequence: number; consumer: string; error: string });
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(listed).toEqual([
      expect.objectContaining({ consumer: 'opstest__flaky', error: 'Error: downstream is down' }),
    ]);
    await waitFor('the steady consumer', () => handled.steady === 1);
    const shown = await runOps(['dlq', 'show', String(listed[0]!.sequence)], env());
    expect(shown.stdout).toContain(target);

    failing = false;
    const redriven = await runOps(['dlq', 'redrive', '--all'], env());
    expect(redriven.code).toBe(0);
    expect(redriven.stdout).toMatch(
      /redriven dead letter #\d+ \(opstest__flaky\) to casino\.events\.funds_transferred/,
    );
    await waitFor('the redriven event', () => handled.flaky === 1, { timeoutMs: 10_000 });

    // Once: a second redrive finds nothing, and neither consumer sees the event again.
    const empty = await runOps(['dlq', 'redrive', '--all'], env());
    expect(empty.stderr).toContain('no dead letters to redrive');
    expect((await runOps(['dlq', 'list', '--json'], env())).stdout.trim()).toBe('');
    await sleep(1_500);
    expect(handled).toEqual({ failed: 1, flaky: 1, steady: 1 });
  }, 45_000);

  it('reports an unreachable NATS with one line and exit code 2', async () => {
    const run = await runOps(['streams'], { ...env(), NATS_URL: 'nats://127.0.0.1:1' });
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toMatch(/^ops: cannot reach NATS at nats:\/\/127\.0\.0\.1:1: /);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });
});
