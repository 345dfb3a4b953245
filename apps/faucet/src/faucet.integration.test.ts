import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import pg from 'pg';
import {
  casinoCommands,
  eventStreams,
  faucetCommands,
  SubjectPrefix,
  type AccountView,
  type ClaimReply,
  type EventEnvelope,
  type FaucetStatsView,
  type LedgerCheckReport,
  type RegisterReply,
  newApiKey,
} from '@pf/contracts';
import { CommandClient, decodeJson, encodeJson } from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  spawnService,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@pf/testing';

const usd = (amount: number) => String(Math.round(amount * 1_000_000));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const BUDGET_USD = 20;

/** Faucet and casino as they run in production (child processes), driven over NATS. */
describe('faucet claims over NATS (real Postgres, NATS and casino)', () => {
  let database: TestDatabase;
  let casino: ServiceProcess;
  let faucet: ServiceProcess;
  let replica: ServiceProcess | undefined;
  let nats: NatsConnection;
  let client: CommandClient;
  let sql: pg.Client;
  let beforeFunding: string | undefined;
  const prefix = testNatsPrefix();
  const subjects = new SubjectPrefix(prefix);
  const env = {
    NATS_URL: testNatsUrl(),
    NATS_PREFIX: prefix,
    DB_POOL_MAX: '4',
    FAUCET_BUDGET_USD: String(BUDGET_USD),
    FAUCET_IP_LIMIT_PER_DAY: '0',
    // The sweep stays out of the way here, so retries are what completes claims; the replica
    // below sweeps fast to show the sweep on its own.
    FAUCET_SWEEP_INTERVAL_MS: '60000',
  };

  const command = <T>(subject: string, payload: unknown, timeoutMs = 10_000) =>
    client.request<T>(subject, payload, timeoutMs);
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: { code?: string }) => error.code,
    );
  const register = () =>
    command<RegisterReply>(casinoCommands.register, { apiKeySha256: newApiKey().apiKeySha256 });
  const claim = (agentId: string) => command<ClaimReply>(faucetCommands.claim, { agentId });
  const account = (agentId: string) => command<AccountView>(casinoCommands.getAccount, { agentId });
  const startCasino = async () => {
    const process = await spawnService('casino', { env: { ...env, DATABASE_URL: database.url } });
    await process.waitUntilReady();
    return process;
  };
  const startFaucet = async (extra: Record<string, string> = {}) => {
    const process = await spawnService('faucet', { env: { ...env, DATABASE_URL: database.url, ...extra } });
    await process.waitUntilReady();
    return process;
  };
  /** Until the treasury is funded a claim answers service_unavailable before it looks the agent up. */
  const waitFunded = () =>
    waitFor('treasury funded', async () => (await failure(claim('ag_000000000000'))) === 'agent_not_found', {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  const claimRow = async (agentId: string) =>
    (
      await sql.query(
        `SELECT claim_id::text, status, stalled FROM faucet.claims WHERE agent_id = $1 AND status <> 'rejected'`,
        [agentId],
      )
    ).rows[0];

  /** Casino is down for the transfer only: the test answers `get_agent` in its place. */
  const answerGetAgentWhileCasinoIsDown = (): Subscription =>
    nats.subscribe(subjects.subject(casinoCommands.getAgent), {
      callback: (_error, message) => {
        const { agentId } = decodeJson<{ agentId: string }>(message.data);
        message.respond(
          encodeJson({
            ok: true,
            data: {
              agentId,
              name: null,
              referralCode: 'ref_00000000',
              referredBy: null,
              createdAt: new Date().toISOString(),
            },
          }),
        );
      },
    });

  /** Runs `work` with casino stopped (the test answering get_agent), then starts casino again whatever happened. */
  const whileCasinoIsDown = async <T>(work: () => Promise<T>): Promise<T> => {
    await casino.stop();
    const stub = answerGetAgentWhileCasinoIsDown();
    try {
      return await work();
    } finally {
      stub.unsubscribe();
      casino = await startCasino();
    }
  };

  beforeAll(async () => {
    database = await createTestDatabase('faucet');
    // The faucet first: it must wait for casino in the background before it can fund.
    faucet = await startFaucet();
    nats = await connectTestNats();
    client = new CommandClient({ connection: nats, prefix: subjects, timeoutMs: 10_000 });
    beforeFunding = await failure(claim('ag_000000000000'));
    casino = await startCasino();
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    await waitFunded();
  }, 60_000);

  afterAll(async () => {
    await Promise.all([faucet?.stop(), replica?.stop(), casino?.stop()]);
    await sql?.end();
    if (nats) {
      await deletePrefixedStreams(nats, prefix).catch(() => undefined);
      await nats.close();
    }
    await database?.drop();
  });

  it('funds the treasury from world once, at start, even though casino came up after the faucet', async () => {
    expect(beforeFunding).toBe('service_unavailable');
    const stats = await command<FaucetStatsView>(faucetCommands.stats, {});
    expect(stats).toMatchObject({
      fundedMicros: usd(BUDGET_USD),
      remainingBudgetMicros: usd(BUDGET_USD),
      totalClaims: 0,
    });
    const treasury = await sql.query(
      `SELECT available_micros::text FROM casino.accounts WHERE account_id = 'faucet_treasury'`,
    );
    expect(treasury.rows[0].available_micros).toBe(usd(BUDGET_USD));
    const rounds = await sql.query(
      `SELECT count(*)::int AS n FROM casino.events WHERE stream_id = 'op-faucet-treasury-funding-1'`,
    );
    expect(rounds.rows[0].n).toBe(1);
  });

  it('credits $1 from the treasury with the claim id as transfer id, and publishes faucet.events.claimed', async () => {
    const agent = await register();
    const reply = await claim(agent.agentId);
    expect(reply).toMatchObject({ agentId: agent.agentId, amountMicros: usd(1) });
    expect(reply.claimId).toMatch(UUID);
    const view = await account(agent.agentId);
    expect(view.availableMicros).toBe(usd(1));
    expect(view.recentActivity[0]).toMatchObject({
      operationId: reply.claimId,
      reason: 'faucet_claim',
      service: 'faucet',
      counterparty: 'faucet_treasury',
    });

    const manager = await jetstreamManager(nats);
    const stream = subjects.streamName(eventStreams.faucet.name);
    const consumer = await manager.consumers.add(stream, {
      filter_subject: subjects.subject('faucet.events.claimed'),
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    const published = await waitFor('faucet.events.claimed', async () => {
      const message = await (
        await jetstream(nats).consumers.get(stream, consumer.name)
      ).next({ expires: 1_000 });
      return message ? (message.json() as EventEnvelope) : undefined;
    });
    expect(published).toMatchObject({
      type: 'claimed',
      stream: `claim-${agent.agentId}`,
      data: { claimId: reply.claimId, agentId: agent.agentId, amountMicros: usd(1) },
    });
  });

  it('refuses malformed and unknown agents', async () => {
    expect(await failure(claim('ag_nothex000000'))).toBe('invalid_request');
    expect(await failure(command(faucetCommands.claim, {}))).toBe('invalid_request');
    expect(await failure(claim('ag_000000000000'))).toBe('agent_not_found');
  });

  it('race: 50 concurrent claims for one agent credit $1 once; the other 49 are already_claimed', async () => {
    const agent = await register();
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => claim(agent.agentId)));
    const succeeded = results.filter((result) => result.status === 'fulfilled');
    const codes = results.flatMap((result) =>
      result.status === 'rejected' ? [(result.reason as { code: string }).code] : [],
    );
    expect(succeeded).toHaveLength(1);
    expect(codes).toEqual(Array(49).fill('already_claimed'));
    expect((await account(agent.agentId)).availableMicros).toBe(usd(1));
    expect(await failure(claim(agent.agentId))).toBe('already_claimed');
  });

  it('refuses agents that deposited (learned from casino.events), and only them', async () => {
    const [depositor, other] = await Promise.all([register(), register()]);
    await command(casinoCommands.credit, {
      agentId: depositor.agentId,
      amountMicros: usd(5),
      reference: `dep-${depositor.agentId}`,
    });
    await waitFor(
      'faucet saw the deposit',
      async () =>
        (await sql.query('SELECT 1 FROM faucet.depositors WHERE agent_id = $1', [depositor.agentId]))
          .rowCount === 1,
    );
    expect(await failure(claim(depositor.agentId))).toBe('has_deposits');
    await expect(claim(other.agentId)).resolves.toMatchObject({ agentId: other.agentId });
    // A deposit by redelivery or replay counts once (the inbox), and transfers that are not deposits never count.
    const rows = await sql.query(`SELECT count(*)::int AS n FROM faucet.depositors`);
    expect(rows.rows[0].n).toBe(1);
  });

  it('casino down mid-claim: 503 at once, the claim stays pending without money; after casino is back a retry completes it', async () => {
    const agent = await register();
    await whileCasinoIsDown(async () => {
      const startedAt = Date.now();
      const error = await claim(agent.agentId).then(
        () => undefined,
        (failed: { code: string; details?: { claim_id?: string } }) => failed,
      );
      expect(error).toMatchObject({
        code: 'service_unavailable',
        details: { claim_id: expect.stringMatching(UUID) },
      });
      // No responder for the transfer: the answer comes at once, not after a timeout.
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      expect(await claimRow(agent.agentId)).toMatchObject({
        claim_id: error!.details!.claim_id,
        status: 'pending',
        stalled: true,
      });
      const moved = await sql.query(`SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1`, [
        `op-${error!.details!.claim_id}`,
      ]);
      expect(moved.rows[0].n).toBe(0);
    });
    const pending = await claimRow(agent.agentId);
    const reply = await claim(agent.agentId);
    expect(reply.claimId).toBe(pending.claim_id);
    // The agent never saw its 200 before, so asking again answers it again: same claim, no new money.
    expect((await claim(agent.agentId)).claimId).toBe(pending.claim_id);
    expect((await account(agent.agentId)).availableMicros).toBe(usd(1));
    expect(await command<LedgerCheckReport>(casinoCommands.checkLedger, {})).toMatchObject({
      ok: true,
      violations: [],
    });
  }, 60_000);

  it('casino killed while it runs the transfer: whatever the first answer, a retry ends with exactly one $1', async () => {
    const agent = await register();
    // A plain (not queue) subscriber sees each transfer request as casino receives it.
    const monitor = nats.subscribe(subjects.subject(casinoCommands.transfer), {
      callback: (_error, message) => {
        if (decodeJson<{ to?: string }>(message.data).to === agent.agentId) void casino.kill();
      },
    });
    const startedAt = Date.now();
    let elapsedMs = 0;
    let first: { ok: true; claimId: string } | { ok: false; code: string };
    try {
      first = await claim(agent.agentId).then(
        (reply) => ({ ok: true as const, claimId: reply.claimId }),
        (error: { code: string }) => ({ ok: false as const, code: error.code }),
      );
      elapsedMs = Date.now() - startedAt;
    } finally {
      monitor.unsubscribe();
      await casino.kill();
      casino = await startCasino();
    }
    // Bounded by the faucet's ledger timeout (2 s): a claim never hangs on a dead ledger.
    expect(elapsedMs).toBeLessThan(8_000);
    if (!first.ok) expect(first.code).toBe('service_unavailable');
    const pending = await claimRow(agent.agentId);
    if (first.ok) {
      expect(await failure(claim(agent.agentId))).toBe('already_claimed');
    } else {
      expect((await claim(agent.agentId)).claimId).toBe(pending.claim_id);
    }
    expect((await account(agent.agentId)).availableMicros).toBe(usd(1));
    const transfers = await sql.query(`SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1`, [
      `op-${pending.claim_id}`,
    ]);
    expect(transfers.rows[0].n).toBe(1);
    expect(await command<LedgerCheckReport>(casinoCommands.checkLedger, {})).toMatchObject({ ok: true });
  }, 60_000);

  it('two replicas: 50 concurrent claims for one agent still credit once; the sweep completes a pending claim on its own', async () => {
    replica = await startFaucet({ FAUCET_SWEEP_INTERVAL_MS: '200' });
    const agent = await register();
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => claim(agent.agentId)));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect((await account(agent.agentId)).availableMicros).toBe(usd(1));

    const stalled = await register();
    expect(await whileCasinoIsDown(() => failure(claim(stalled.agentId)))).toBe('service_unavailable');
    await waitFor(
      'the sweep completed the claim',
      async () => (await claimRow(stalled.agentId))?.status === 'completed',
      { timeoutMs: 10_000 },
    );
    expect((await account(stalled.agentId)).availableMicros).toBe(usd(1));
    expect((await claim(stalled.agentId)).claimId).toBe((await claimRow(stalled.agentId)).claim_id);
  }, 60_000);

  it('keeps the faucet and the ledger in agreement, and a restart with a raised budget tops the treasury up', async () => {
    const totals = await sql.query(
      `SELECT funded_micros::text AS funded, claimed_micros::text AS claimed, claims_pending FROM faucet.treasury`,
    );
    const ledger = await sql.query(
      `SELECT available_micros::text FROM casino.accounts WHERE account_id = 'faucet_treasury'`,
    );
    expect(totals.rows[0].claims_pending).toBe(0);
    expect(BigInt(ledger.rows[0].available_micros)).toBe(
      BigInt(totals.rows[0].funded) - BigInt(totals.rows[0].claimed),
    );
    const claimedAgents = await sql.query(
      `SELECT count(*)::int AS n FROM faucet.claims WHERE status = 'completed'`,
    );
    const stats = await command<FaucetStatsView>(faucetCommands.stats, {});
    expect(stats).toMatchObject({
      totalClaims: claimedAgents.rows[0].n,
      totalAgents: claimedAgents.rows[0].n,
      totalValueMicros: totals.rows[0].claimed,
      pendingClaims: 0,
    });

    const exits = await Promise.all([faucet.stop(), replica?.stop()]);
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    replica = undefined;
    faucet = await startFaucet({ FAUCET_BUDGET_USD: String(BUDGET_USD + 5) });
    await waitFor(
      'top-up recorded',
      async () =>
        (await command<FaucetStatsView>(faucetCommands.stats, {})).fundedMicros === usd(BUDGET_USD + 5),
    );
    const rounds = await sql.query(
      `SELECT data->>'transferId' AS id, data->>'amountMicros' AS amount FROM faucet.events WHERE type = 'treasury_funded' ORDER BY global_position`,
    );
    expect(rounds.rows).toEqual([
      { id: 'faucet-treasury-funding-1', amount: usd(BUDGET_USD) },
      { id: 'faucet-treasury-funding-2', amount: usd(5) },
    ]);
    expect(await command<LedgerCheckReport>(casinoCommands.checkLedger, {})).toMatchObject({ ok: true });
  }, 60_000);
});
