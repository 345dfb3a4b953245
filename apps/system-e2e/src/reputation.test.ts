import { spawn } from 'node:child_process';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import pg from 'pg';
import { SubjectPrefix, type EventEnvelope } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  workspaceRoot,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'reputation-e2e-admin-key-0123456789';

type Job = { job_id: string; status: string; awards: Array<{ escrow_id: string; worker_id: string }> };
type Profile = {
  agent_id: string;
  worker: Record<string, unknown> & { score: number; total_earned_micros: string };
  poster: Record<string, unknown> & { score: number };
  latest_ratings: Array<{ escrow_id: string; rater_id: string; score: number; comment: string | null }>;
};

/**
 * Reputation end to end (ADR 0015): escrow's events reach the market's log through its durable
 * consumer, ratings stand only on settled escrows and only once, the profile and leaderboard
 * say what happened, and `ops verify` rebuilds the reputation tables from the log and finds
 * them equal to the live ones, row by row.
 */
describe('reputation: profiles, ratings and leaderboards from the event log', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let sql: pg.Client;
  const prefix = testNatsPrefix();
  /** The worker paid in the first scenario and its released escrow, for the later checks. */
  let paid: { worker: Agent; escrowId: string } | undefined;

  const getJob = (jobId: string) => api.get<Job>(`/jobs/${jobId}`);
  const waitForJob = (jobId: string, status: string) =>
    waitFor(`job ${status}`, async () => (await getJob(jobId)).body.status === status, {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  const profileOf = (agent: Agent) => api.get<Profile>(`/agents/${agent.agentId}/reputation`);
  const rate = (agent: Agent, escrowId: string, body: Record<string, unknown>) =>
    api.post<{ error?: string; ratee_id?: string }>(`/escrow/${escrowId}/rating`, body, agent.apiKey);

  /** Poster posts, `worker` bids `priceUsd` and is awarded; returns the escrow. */
  async function awarded(
    poster: Agent,
    worker: Agent,
    priceUsd: number,
  ): Promise<{ jobId: string; escrowId: string }> {
    const posted = await api.post<Job>(
      '/jobs',
      {
        title: 'BTC/gold correlation',
        description: 'Analyze BTC price correlation with gold',
        budget_usd: 5,
      },
      poster.apiKey,
    );
    const jobId = posted.body.job_id;
    const bid = await api.post<{ bid_id: string }>(
      `/jobs/${jobId}/bids`,
      { price_usd: priceUsd, eta_minutes: 30 },
      worker.apiKey,
    );
    const award = await api.post<Job>(`/jobs/${jobId}/award`, { bid_id: bid.body.bid_id }, poster.apiKey);
    expect(award.status).toBe(200);
    return { jobId, escrowId: award.body.awards[0]!.escrow_id };
  }

  beforeAll(async () => {
    database = await createTestDatabase('reputatione2e');
    system = await startSystem({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      FAUCET_IP_LIMIT_PER_DAY: '0',
      MARKET_SWEEP_INTERVAL_MS: '200',
    });
    api = new ApiClient(system.gatewayUrl);
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
  }, 90_000);

  afterAll(async () => {
    await system?.stop();
    await sql?.end();
    await database?.drop();
  });

  it('rates only a settled escrow, only as a party, once; the profile and leaderboard show the facts', async () => {
    const [poster, worker, outsider] = await Promise.all([api.register(), api.register(), api.register()]);
    await api.credit(ADMIN_API_KEY, poster.agentId, 20);
    const first = await awarded(poster, worker, 4);
    const second = await awarded(poster, worker, 2);

    expect((await rate(poster, first.escrowId, { score: 5 })).body.error).toBe('rating_not_allowed');
    expect((await api.post(`/escrow/complete/${first.escrowId}`, {}, worker.apiKey)).status).toBe(200);
    await waitForJob(first.jobId, 'completed');
    expect((await api.post(`/escrow/release/${first.escrowId}`, {}, poster.apiKey)).status).toBe(200);
    await waitForJob(first.jobId, 'closed');
    expect((await api.post(`/escrow/decline/${second.escrowId}`, {}, worker.apiKey)).status).toBe(200);
    await waitForJob(second.jobId, 'closed');

    const bad = await rate(poster, first.escrowId, { score: 6 });
    expect([bad.status, bad.body.error]).toEqual([400, 'invalid_score']);
    const stranger = await rate(outsider, first.escrowId, { score: 1 });
    expect([stranger.status, stranger.body.error]).toEqual([403, 'not_a_party']);
    expect((await rate(poster, second.escrowId, { score: 1 })).body.error).toBe('rating_not_allowed');
    const given = await rate(poster, first.escrowId, { score: 5, comment: 'fast and right' });
    expect([given.status, given.body.ratee_id]).toEqual([201, worker.agentId]);
    const twice = await rate(poster, first.escrowId, { score: 1 });
    expect([twice.status, twice.body.error]).toEqual([409, 'already_rated']);
    // Racing ratings of one (escrow, rater): exactly one is recorded.
    const race = await Promise.all([1, 2, 3].map((score) => rate(worker, first.escrowId, { score })));
    expect(race.filter((answer) => answer.status === 201)).toHaveLength(1);
    expect(
      Number(
        (
          await sql.query(`SELECT count(*) AS n FROM market.rep_ratings WHERE escrow_id = $1`, [
            first.escrowId,
          ])
        ).rows[0].n,
      ),
    ).toBe(2);

    paid = { worker, escrowId: first.escrowId };
    const profile = (await profileOf(worker)).body;
    expect(profile.worker).toMatchObject({
      jobs_won: 2,
      completed: 1,
      released: 1,
      declined: 1,
      refunded_undelivered: 0,
      on_time_rate: 1,
      unique_paying_counterparties: 1,
      // $4 less the 1% commission, to the micro-dollar
      total_earned_micros: '3960000',
      total_earned_usd: 3.96,
    });
    expect(profile.worker.score).toBeGreaterThan(0);
    expect(profile.latest_ratings).toEqual([
      expect.objectContaining({
        escrow_id: first.escrowId,
        rater_id: poster.agentId,
        score: 5,
        comment: 'fast and right',
      }),
    ]);
    expect((await profileOf(poster)).body.poster).toMatchObject({
      jobs_posted: 2,
      jobs_awarded: 2,
      released: 1,
    });
    expect((await api.get(`/agents/not-an-agent/reputation`)).status).toBe(400);

    const board = await api.get<{ entries: Array<{ agent_id: string; total_earned_micros: string }> }>(
      '/leaderboard?by=earned&role=worker&limit=5',
    );
    expect(board.status).toBe(200);
    expect(board.body.entries[0]).toMatchObject({ agent_id: worker.agentId, total_earned_micros: '3960000' });
    expect((await api.get('/leaderboard?by=fame')).status).toBe(400);
  }, 90_000);

  it('best_reputation awards the reputed worker over a cheaper newcomer', async () => {
    const { worker } = paid!;
    const [poster, newcomer] = await Promise.all([api.register(), api.register()]);
    await api.credit(ADMIN_API_KEY, poster.agentId, 10);
    const posted = await api.post<Job>(
      '/jobs',
      {
        title: 'BTC/gold correlation',
        description: 'Analyze BTC price correlation with gold',
        budget_usd: 5,
        award_policy: 'best_reputation',
        bid_window_minutes: 1,
      },
      poster.apiKey,
    );
    const jobId = posted.body.job_id;
    for (const [bidder, priceUsd] of [
      [newcomer, 2],
      [worker, 4],
    ] as const)
      expect(
        (await api.post(`/jobs/${jobId}/bids`, { price_usd: priceUsd, eta_minutes: 30 }, bidder.apiKey))
          .status,
      ).toBe(201);
    // The bid window's saga, a minute early: its deadline row falls due now.
    await sql.query('UPDATE market.deadlines SET due_at = now() WHERE job_id = $1', [jobId]);
    await waitForJob(jobId, 'awarded');
    expect((await getJob(jobId)).body.awards.map((award) => award.worker_id)).toEqual([worker.agentId]);
  }, 30_000);

  it('records an escrow event once: re-published copies (past the broker dedup) change nothing', async () => {
    const { worker, escrowId } = paid!;
    const observed = async () =>
      Number(
        (
          await sql.query(
            `SELECT count(*) AS n FROM market.events WHERE stream_id = $1 AND type = 'escrow_observed'`,
            [`rep-${escrowId}`],
          )
        ).rows[0].n,
      );
    const before = { count: await observed(), profile: (await profileOf(worker)).body };
    const rows = await sql.query(
      `SELECT event_id, type, stream_id, stream_version, global_position, data, recorded_at FROM escrow.events WHERE stream_id = $1`,
      [`escrow-${escrowId}`],
    );
    expect(rows.rows.map((row: { type: string }) => row.type)).toContain('released');
    const nats = await connectTestNats();
    try {
      const js = jetstream(nats);
      const subjects = new SubjectPrefix(prefix);
      for (const row of rows.rows as Array<{
        event_id: string;
        type: string;
        stream_id: string;
        stream_version: number;
        global_position: string;
        data: Record<string, unknown>;
        recorded_at: Date;
      }>) {
        const envelope: EventEnvelope = {
          id: row.event_id,
          type: row.type,
          stream: row.stream_id,
          version: row.stream_version,
          position: Number(row.global_position),
          occurred_at: row.recorded_at.toISOString(),
          correlation_id: null,
          causation_id: null,
          schema: 1,
          data: row.data,
        };
        await js.publish(subjects.subject(`escrow.events.${row.type}`), JSON.stringify(envelope), {
          msgID: `${row.event_id}-copy`,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } finally {
      await nats.close();
    }
    expect(await observed()).toBe(before.count);
    const after = (await profileOf(worker)).body;
    // The score decays by the second (read-time half-life), the figures do not move at all.
    const figures = (profile: Profile) => ({
      ...profile,
      computed_at: null,
      worker: { ...profile.worker, score: null },
      poster: { ...profile.poster, score: null },
    });
    expect(figures(after)).toEqual(figures(before.profile));
    expect(after.worker.score).toBeCloseTo(before.profile.worker.score, 1);
  }, 30_000);

  /** `ops verify market`: replays the market's log into shadow tables and compares them with the live ones. */
  const verifyMarket = () =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const entry = path.join(workspaceRoot(), 'dist', 'apps', 'ops', 'src', 'main.js');
      const child = spawn(process.execPath, [entry, 'verify', 'market', '--grace', '0'], {
        env: {
          PATH: process.env.PATH ?? '',
          DATABASE_URL: database.url,
          NATS_URL: testNatsUrl(),
          NATS_PREFIX: prefix,
        },
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('close', (code) => resolve({ code, output }));
    });

  it('ops verify rebuilds the reputation tables from the log and finds them equal to the live ones, row by row', async () => {
    expect(
      Number((await sql.query('SELECT count(*) AS n FROM market.rep_escrows')).rows[0].n),
    ).toBeGreaterThan(0);
    const green = await verifyMarket();
    expect(green.output).toMatch(/market: ok/);
    expect(green.code).toBe(0);
    // The comparison sees the reputation tables: one altered rating makes it fail.
    const { escrowId } = paid!;
    await sql.query('UPDATE market.rep_ratings SET score = 6 - score WHERE escrow_id = $1', [escrowId]);
    try {
      const red = await verifyMarket();
      expect(red.code).not.toBe(0);
      expect(red.output).toMatch(/rep_ratings/);
    } finally {
      await sql.query('UPDATE market.rep_ratings SET score = 6 - score WHERE escrow_id = $1', [escrowId]);
    }
  }, 90_000);
});
