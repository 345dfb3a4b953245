import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { DataSource } from 'typeorm';
import {
  casinoCommands,
  escrowCommands,
  SubjectPrefix,
  type AccountView,
  type EscrowView,
  type LedgerCheckReport,
  type RegisterReply,
  newApiKey,
} from '@pf/contracts';
import { EventStore } from '@pf/event-store';
import { CommandClient } from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  sleep,
  spawnService,
  TcpProxy,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@pf/testing';
import { escrowProjection } from './infrastructure/escrow-projection.js';
import { encodeEscrowEvent } from './infrastructure/escrow-codec.js';

const usd = (amount: number) => String(Math.round(amount * 1_000_000));

/**
 * Crash safety of the escrow sagas: creates cut off between "opened" and the hold's outcome,
 * casino away at create and at a deadline, escrow killed (SIGKILL) in the middle of a sweep,
 * and Postgres and NATS unreachable from escrow for a while. After each, every escrow ends
 * funded or rejected, every due deadline is processed exactly once, and the books balance.
 */
describe('escrow crash recovery (real Postgres, NATS and casino)', () => {
  let database: TestDatabase;
  let casino: ServiceProcess;
  let escrow: ServiceProcess;
  let nats: NatsConnection;
  let client: CommandClient;
  let sql: pg.Client;
  let dataSource: DataSource;
  let store: EventStore;
  const postgresProxy = TcpProxy.forUrl('postgres://127.0.0.1:5432');
  const natsProxy = TcpProxy.forUrl(testNatsUrl());
  const prefix = testNatsPrefix();
  const baseEnv = () => ({ DATABASE_URL: database.url, NATS_URL: testNatsUrl(), NATS_PREFIX: prefix });
  // Escrow reaches Postgres and NATS through proxies the test can cut; small sweep batches make
  // a sweep of a few hundred deadlines last long enough to be interrupted.
  const escrowEnv = () => ({
    ...baseEnv(),
    DATABASE_URL: postgresProxy.rewrite(database.url),
    NATS_URL: natsProxy.rewrite(testNatsUrl()),
    ESCROW_MIN_TIMEOUT_SECONDS: '1',
    ESCROW_SWEEP_INTERVAL_MS: '200',
    ESCROW_RECOVERY_AFTER_MS: '1000',
    ESCROW_SWEEP_BATCH_SIZE: '10',
    ESCROW_SWEEP_WORKERS: '1',
  });

  const command = <T>(subject: string, payload: unknown) => client.request<T>(subject, payload);
  const register = () =>
    command<RegisterReply>(casinoCommands.register, { apiKeySha256: newApiKey().apiKeySha256 });
  const account = (agentId: string) => command<AccountView>(casinoCommands.getAccount, { agentId });
  const credit = (agentId: string, amount: number) =>
    command(casinoCommands.credit, {
      agentId,
      amountMicros: usd(amount),
      reference: `ref-${agentId}-${amount}`,
    });
  const create = (
    creatorId: string,
    counterpartyId: string,
    amount: number,
    extra: Record<string, unknown> = {},
  ) =>
    command<EscrowView>(escrowCommands.create, {
      creatorId,
      counterpartyId,
      amountMicros: usd(amount),
      description: 'a job to do',
      ...extra,
    });
  const status = async (escrowId: string) =>
    (await sql.query(`SELECT status FROM escrow.escrows WHERE escrow_id = $1`, [escrowId])).rows[0]
      ?.status as string | undefined;
  const count = async (query: string, params: unknown[] = []) =>
    (await sql.query(query, params)).rows[0].n as number;
  const startCasino = async () => {
    casino = await spawnService('casino', { env: baseEnv() });
    await casino.waitUntilReady();
  };
  const startEscrow = async () => {
    escrow = await spawnService('escrow', { env: escrowEnv() });
    await escrow.waitUntilReady();
  };
  const pair = async (fund: number) => {
    const [creator, worker] = await Promise.all([register(), register()]);
    if (fund > 0) await credit(creator.agentId, fund);
    return { creator: creator.agentId, worker: worker.agentId };
  };
  /** The state a crash leaves behind: `opened` recorded, the hold's outcome not. */
  const openDirectly = async (
    escrowId: string,
    creatorId: string,
    counterpartyId: string,
    amount: number,
  ) => {
    const event = encodeEscrowEvent({
      type: 'opened',
      escrowId,
      creatorId,
      counterpartyId,
      amountMicros: BigInt(usd(amount)),
      commissionBps: 100,
      referrerId: null,
      description: 'cut off',
      timeoutMs: 3_600_000,
    });
    await store.append(`escrow-${escrowId}`, 0, [
      { eventId: randomUUID(), ...event, metadata: { service: 'escrow', schemaVersion: 1 } },
    ]);
  };
  const expectBooksBalance = async () => {
    const report = await command<LedgerCheckReport>(casinoCommands.checkLedger, {});
    expect(report.violations).toEqual([]);
  };

  beforeAll(async () => {
    database = await createTestDatabase('escrowcrash');
    await Promise.all([postgresProxy.start(), natsProxy.start()]);
    await startCasino();
    await startEscrow();
    nats = await connectTestNats();
    client = new CommandClient({ connection: nats, prefix: new SubjectPrefix(prefix), timeoutMs: 10_000 });
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    dataSource = new DataSource({ type: 'postgres', url: database.url, schema: 'escrow', extra: { max: 2 } });
    await dataSource.initialize();
    store = new EventStore({ dataSource, schema: 'escrow', inlineProjections: [escrowProjection] });
  }, 60_000);

  afterAll(async () => {
    await escrow?.stop();
    await casino?.stop();
    await Promise.all([postgresProxy.stop(), natsProxy.stop()]);
    await sql?.end();
    await dataSource?.destroy();
    if (nats) {
      await deletePrefixedStreams(nats, prefix).catch(() => undefined);
      await nats.close();
    }
    await database?.drop();
  });

  it('finishes creates cut off before the hold was recorded: funded if the hold succeeds, rejected if refused', async () => {
    const rich = await pair(10);
    const poor = await pair(0);
    const [heldAlready, notYetHeld, refused] = [
      'esc_00000000000000c1',
      'esc_00000000000000c2',
      'esc_00000000000000c3',
    ];
    // Crash after the hold: casino holds the money, the escrow still says "opened".
    await openDirectly(heldAlready, rich.creator, rich.worker, 2);
    await command(casinoCommands.hold, {
      holdId: heldAlready,
      from: rich.creator,
      amountMicros: usd(2),
      service: 'escrow',
    });
    // Crash before the hold.
    await openDirectly(notYetHeld, rich.creator, rich.worker, 3);
    await openDirectly(refused, poor.creator, poor.worker, 1);

    await waitFor(
      'recovery',
      async () =>
        (await status(heldAlready)) === 'funded' &&
        (await status(notYetHeld)) === 'funded' &&
        (await status(refused)) === 'rejected',
      {
        timeoutMs: 5_000,
      },
    );
    expect(await account(rich.creator)).toMatchObject({ availableMicros: usd(5), heldMicros: usd(5) });
    expect(await account(poor.creator)).toMatchObject({ availableMicros: '0', heldMicros: '0' });
    expect(
      await count(`SELECT count(*)::int AS n FROM escrow.events WHERE stream_id = $1 AND type = 'funded'`, [
        `escrow-${heldAlready}`,
      ]),
    ).toBe(1);
    await expectBooksBalance();
  });

  it('casino away at create: 503, then the sweep funds the escrow and a retry with the same id returns it', async () => {
    const { creator, worker } = await pair(10);
    await create(creator, worker, 1); // both agents are now known to escrow
    await casino.stop();
    const escrowId = 'esc_00000000000000d1';
    const error = await create(creator, worker, 2, { escrowId }).catch(
      (caught: { code: string; details?: Record<string, unknown> }) => caught,
    );
    expect(error).toMatchObject({ code: 'service_unavailable', details: { escrow_id: escrowId } });
    expect(await status(escrowId)).toBe('opened');
    await startCasino();
    await waitFor('funded by the sweep', async () => (await status(escrowId)) === 'funded', {
      timeoutMs: 8_000,
    });
    expect(await create(creator, worker, 2, { escrowId })).toMatchObject({ escrowId, status: 'funded' });
    expect(await account(creator)).toMatchObject({ availableMicros: usd(7), heldMicros: usd(3) });
  });

  it('casino away at a deadline: the refund is recorded on time and the money returns once casino is back', async () => {
    const { creator, worker } = await pair(10);
    const { escrowId } = await create(creator, worker, 4, { timeoutMs: 1_500 });
    await casino.stop();
    await waitFor('refund recorded', async () => (await status(escrowId)) === 'refunded', {
      timeoutMs: 5_000,
    });
    expect(
      await count(`SELECT count(*)::int AS n FROM escrow.settlements WHERE escrow_id = $1`, [escrowId]),
    ).toBe(1);
    await startCasino();
    await waitFor(
      'settled',
      async () => (await count(`SELECT count(*)::int AS n FROM escrow.settlements`)) === 0,
      { timeoutMs: 10_000 },
    );
    expect(await account(creator)).toMatchObject({ availableMicros: usd(10), heldMicros: '0' });
    expect(
      await count(
        `SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1 AND type = 'hold_voided'`,
        [`op-${escrowId}`],
      ),
    ).toBe(1);
  });

  it('casino away while milestones settle: a release and the deadline wait in the outbox, then each part lands once', async () => {
    const { creator, worker } = await pair(10);
    const { escrowId } = await create(creator, worker, 6, {
      timeoutMs: 2_000,
      milestones: [
        { description: 'paid', amountMicros: usd(1) },
        { description: 'delivered', amountMicros: usd(2) },
        { description: 'unfinished', amountMicros: usd(3) },
      ],
    });
    await command(escrowCommands.complete, { escrowId, actorId: worker, milestone: 1 });
    await casino.stop();
    // The release is decided and recorded; its part waits for casino.
    const error = await command(escrowCommands.release, { escrowId, actorId: creator, milestone: 0 }).catch(
      (caught: { code: string }) => caught,
    );
    expect(error).toMatchObject({ code: 'service_unavailable' });
    // The deadline settles the rest (milestone 1 released, 2 refunded) while casino is still away.
    await waitFor('deadline recorded', async () => (await status(escrowId)) === 'released', {
      timeoutMs: 8_000,
    });
    const keys = await sql.query(
      `SELECT escrow_id FROM escrow.settlements WHERE escrow_id LIKE $1 ORDER BY escrow_id`,
      [`${escrowId}%`],
    );
    expect(keys.rows.map((row: { escrow_id: string }) => row.escrow_id)).toEqual([
      `${escrowId}:deadline`,
      `${escrowId}:m0`,
    ]);
    await startCasino();
    await waitFor(
      'settled',
      async () => (await count(`SELECT count(*)::int AS n FROM escrow.settlements`)) === 0,
      { timeoutMs: 15_000 },
    );
    // Whatever order the parts reached casino in: 1 and 2 paid (1% commission), 3 back, once each.
    expect(await account(creator)).toMatchObject({ availableMicros: usd(7), heldMicros: '0' });
    expect(await account(worker)).toMatchObject({ availableMicros: usd(0.99 + 1.98) });
    expect(
      await count(
        `SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1 AND type = 'hold_part_posted'`,
        [`op-${escrowId}`],
      ),
    ).toBe(2);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1 AND type IN ('hold_voided', 'hold_posted')`,
        [`op-${escrowId}`],
      ),
    ).toBe(0);
    await expectBooksBalance();
  });

  it('SIGKILL in the middle of a sweep: after a restart every due deadline is processed exactly once', async () => {
    const escrowCount = 150;
    const { creator, worker } = await pair(100);
    const ids: string[] = [];
    for (let batch = 0; batch < escrowCount / 15; batch += 1) {
      const created = await Promise.all(
        Array.from({ length: 15 }, () => create(creator, worker, 0.5, { timeoutMs: 3_600_000 })),
      );
      ids.push(...created.map((escrowView) => escrowView.escrowId));
    }
    // All fall due at once, by the database's clock.
    await sql.query(`UPDATE escrow.deadlines SET due_at = now() WHERE escrow_id = ANY($1)`, [ids]);
    const refundedSql = `SELECT count(*)::int AS n FROM escrow.events WHERE type = 'refunded' AND stream_id = ANY($1)`;
    const streams = ids.map((id) => `escrow-${id}`);
    const before = await waitFor(
      'sweep under way',
      async () => {
        const n = await count(refundedSql, [streams]);
        return n > 0 ? n : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 5 },
    );
    await escrow.kill();
    const atKill = await count(refundedSql, [streams]);
    expect(before).toBeLessThan(escrowCount);
    expect(atKill).toBeLessThan(escrowCount);

    await startEscrow();
    await waitFor(
      'all deadlines processed',
      async () => (await count(refundedSql, [streams])) === escrowCount,
      { timeoutMs: 20_000 },
    );
    await waitFor(
      'all settled',
      async () => (await count(`SELECT count(*)::int AS n FROM escrow.settlements`)) === 0,
      { timeoutMs: 10_000 },
    );
    const perStream = await sql.query(
      `SELECT stream_id, count(*)::int AS n FROM escrow.events WHERE type = 'refunded' AND stream_id = ANY($1) GROUP BY stream_id`,
      [streams],
    );
    expect(perStream.rows).toHaveLength(escrowCount);
    expect(perStream.rows.every((row: { n: number }) => row.n === 1)).toBe(true);
    const voids = await count(
      `SELECT count(*)::int AS n FROM casino.events WHERE type = 'hold_voided' AND stream_id = ANY($1)`,
      [ids.map((id) => `op-${id}`)],
    );
    expect(voids).toBe(escrowCount);
    expect(
      await count(`SELECT count(*)::int AS n FROM escrow.deadlines WHERE escrow_id = ANY($1)`, [ids]),
    ).toBe(0);
    expect(await account(creator)).toMatchObject({ availableMicros: usd(100), heldMicros: '0' });
    await expectBooksBalance();
  }, 60_000);

  it('Postgres and NATS unreachable from escrow while deadlines fall due: processed once both are back', async () => {
    const { creator, worker } = await pair(10);
    const created = await Promise.all(
      [1, 2].map((amount) => create(creator, worker, amount, { timeoutMs: 1_000 })),
    );
    await Promise.all([postgresProxy.cut(), natsProxy.cut()]);
    await sleep(2_500);
    await Promise.all([postgresProxy.restore(), natsProxy.restore()]);
    for (const { escrowId } of created) {
      await waitFor(`${escrowId} refunded`, async () => (await status(escrowId)) === 'refunded', {
        timeoutMs: 15_000,
      });
    }
    await waitFor('settled', async () => (await account(creator)).heldMicros === '0', { timeoutMs: 10_000 });
    expect((await account(creator)).availableMicros).toBe(usd(10));
    await expectBooksBalance();
  }, 40_000);
});
