import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { SubjectPrefix, type EventEnvelope } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type TestDatabase,
  type TestSystem,
  runOps,
} from '@pf/testing';
import { ApiClient, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'market-e2e-admin-key-0123456789';

type Job = {
  job_id: string;
  status: string;
  bid_count: number;
  bids?: Array<{ bid_id: string; worker_id: string; price_usd: number; status: string }>;
  awards: Array<{
    bid_id: string;
    worker_id: string;
    escrow_id: string;
    price_usd: number;
    escrow_status: string;
    race: string | null;
  }>;
  winner_escrow_id: string | null;
};

/**
 * The market end to end: gateway → market → escrow → casino, and escrow's events back to the
 * market through its durable consumer. One system for the whole file; each scenario uses its
 * own agents. Ends with `ops verify` (ledger and market ↔ escrow cross-checks) after the races.
 */
describe('market: jobs, bids, awards and races (gateway → market → escrow → casino)', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let sql: pg.Client;
  let nats: NatsConnection;
  const prefix = testNatsPrefix();
  let env: Record<string, string>;

  const register = () => api.register();
  const post = (poster: Agent, body: Record<string, unknown>) =>
    api.post<Job & { error?: string }>(
      '/jobs',
      {
        title: 'BTC/gold correlation',
        description: 'Analyze BTC price correlation with gold over 30 days',
        budget_usd: 5,
        ...body,
      },
      poster.apiKey,
    );
  const bid = (worker: Agent, jobId: string, priceUsd: number) =>
    api.post<{ bid_id: string; error?: string }>(
      `/jobs/${jobId}/bids`,
      { price_usd: priceUsd, eta_minutes: 30 },
      worker.apiKey,
    );
  const getJob = (jobId: string, viewer?: Agent) => api.get<Job>(`/jobs/${jobId}`, viewer?.apiKey);
  const escrowCount = async (jobId: string) =>
    Number(
      (await sql.query('SELECT count(*) AS n FROM escrow.escrows WHERE job_id = $1', [jobId])).rows[0].n,
    );
  const waitForJob = (jobId: string, check: (job: Job) => boolean, what: string) =>
    waitFor(what, async () => check((await getJob(jobId)).body), { timeoutMs: 15_000, intervalMs: 100 });
  const ordersDrained = () =>
    waitFor(
      'escrow orders sent',
      async () => Number((await sql.query('SELECT count(*) AS n FROM market.escrow_orders')).rows[0].n) === 0,
      { timeoutMs: 15_000, intervalMs: 100 },
    );

  /** A poster with `fundUsd` and three workers with three bids on a fresh job. */
  async function jobWithBids(fundUsd: number, prices: number[], body: Record<string, unknown> = {}) {
    const [poster, ...workers] = await Promise.all([register(), ...prices.map(() => register())]);
    if (fundUsd > 0) await api.credit(ADMIN_API_KEY, poster!.agentId, fundUsd);
    const posted = await post(poster!, body);
    expect(posted.status).toBe(201);
    const bids = await Promise.all(
      workers.map((worker, index) => bid(worker, posted.body.job_id, prices[index]!)),
    );
    for (const placed of bids) expect(placed.status).toBe(201);
    return {
      poster: poster!,
      workers,
      jobId: posted.body.job_id,
      bidIds: bids.map((placed) => placed.body.bid_id),
    };
  }

  beforeAll(async () => {
    database = await createTestDatabase('markete2e');
    env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      FAUCET_IP_LIMIT_PER_DAY: '0',
      MARKET_AWARD_RECOVERY_AFTER_MS: '1000',
      MARKET_SWEEP_INTERVAL_MS: '200',
    };
    system = await startSystem(env);
    api = new ApiClient(system.gatewayUrl);
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    nats = await connectTestNats();
  }, 90_000);

  afterAll(async () => {
    await system?.stop();
    await sql?.end();
    await nats?.close();
    await database?.drop();
  });

  it('posts a job, takes bids (replacing and withdrawing), refuses bad input with codes and writes nothing', async () => {
    const [poster, worker, other, outsider] = await Promise.all([
      register(),
      register(),
      register(),
      register(),
    ]);
    const events = async () => Number((await sql.query('SELECT count(*) AS n FROM market.events')).rows[0].n);
    const before = await events();
    for (const [body, code] of [
      [{ budget_usd: 0 }, 'invalid_budget'],
      [{ budget_usd: 'lots' }, 'invalid_budget'],
      [{ title: 'x' }, 'invalid_title'],
      [{ race: { workers: 1 } }, 'race_size_invalid'],
      [{ race: { workers: 11 } }, 'race_size_invalid'],
      [{ bid_window_minutes: -1 }, 'invalid_bid_window'],
      [{ tags: 'nope' }, 'invalid_tags'],
    ] as const) {
      const answer = await post(poster, body);
      expect([answer.status, answer.body.error]).toEqual([400, code]);
    }
    expect((await api.post('/jobs', {})).status).toBe(401);
    expect(await events()).toBe(before);

    const posted = await post(poster, { tags: ['analysis'] });
    expect(posted.status).toBe(201);
    const jobId = posted.body.job_id;
    expect(jobId).toMatch(/^job_[0-9a-f]{16}$/);
    expect((await bid(worker, jobId, 5.01)).body.error).toBe('bid_above_budget');
    expect((await bid(poster, jobId, 1)).body.error).toBe('own_job');
    expect((await bid(worker, 'job_ffffffffffffffff', 1)).status).toBe(404);
    expect((await getJob('job_ffffffffffffffff')).status).toBe(404);
    const first = await bid(worker, jobId, 4);
    const second = await bid(worker, jobId, 3.5);
    expect(second.body.bid_id).not.toBe(first.body.bid_id);
    await bid(other, jobId, 4.5);
    expect((await api.call('DELETE', `/jobs/${jobId}/bids/mine`, { key: other.apiKey })).status).toBe(200);
    expect((await api.call('DELETE', `/jobs/${jobId}/bids/mine`, { key: other.apiKey })).body.error).toBe(
      'bid_not_found',
    );

    const asPoster = (await getJob(jobId, poster)).body;
    expect(asPoster.bid_count).toBe(1);
    expect(asPoster.bids!.map((live) => [live.worker_id, live.price_usd])).toEqual([[worker.agentId, 3.5]]);
    expect((await getJob(jobId, worker)).body.bids).toHaveLength(1);
    const asOutsider = (await getJob(jobId, outsider)).body;
    expect(asOutsider.bids).toBeUndefined();
    expect(asOutsider.bid_count).toBe(1);

    const board = await api.get<{ jobs: Job[]; next_cursor: string | null }>(
      '/jobs?status=open&tag=analysis&limit=50',
    );
    expect(board.body.jobs.map((job) => job.job_id)).toContain(jobId);
    const mine = await api.get<{ jobs: Job[] }>('/jobs/mine?role=worker', worker.apiKey);
    expect(mine.body.jobs.map((job) => job.job_id)).toEqual([jobId]);
    const newer = await post(outsider, { title: 'A second job' });
    const page = await api.get<{ jobs: Job[]; next_cursor: string | null }>('/jobs?status=all&limit=1');
    expect(page.body.jobs[0]!.job_id).toBe(newer.body.job_id);
    expect(page.body.jobs).toHaveLength(1);
    const next = await api.get<{ jobs: Job[] }>(`/jobs?status=all&limit=1&cursor=${page.body.next_cursor}`);
    expect(next.body.jobs[0]!.job_id).toBe(jobId);
  });

  it('awards the cheapest bid: one escrow, the worker completes, the poster releases, the job closes; money exact', async () => {
    const { poster, workers, jobId, bidIds } = await jobWithBids(10, [4, 3, 4.5]);
    expect(
      (await api.post(`/jobs/${jobId}/award`, { bid_id: bidIds[1] }, workers[0]!.apiKey)).body.error,
    ).toBe('not_poster');
    const awarded = await api.post<Job>(`/jobs/${jobId}/award`, { bid_id: bidIds[1] }, poster.apiKey);
    expect(awarded.status).toBe(200);
    expect(awarded.body.status).toBe('awarded');
    const escrowId = awarded.body.awards[0]!.escrow_id;
    expect((await api.post(`/jobs/${jobId}/award`, { bid_id: bidIds[0] }, poster.apiKey)).body.error).toBe(
      'already_awarded',
    );
    expect((await bid(workers[2]!, jobId, 1)).body.error).toBe('already_awarded');
    expect(await api.balanceUsd(poster.apiKey)).toBe(7);

    expect(
      (await api.post(`/escrow/complete/${escrowId}`, { result_summary: 'corr 0.34' }, workers[1]!.apiKey))
        .status,
    ).toBe(200);
    await waitForJob(jobId, (job) => job.status === 'completed', 'job completed');
    expect((await api.post(`/escrow/release/${escrowId}`, {}, poster.apiKey)).status).toBe(200);
    await waitForJob(jobId, (job) => job.status === 'closed', 'job closed');
    expect(await api.balanceUsd(poster.apiKey)).toBe(7);
    expect(await api.balanceUsd(workers[1]!.apiKey)).toBe(2.97);
    expect(await escrowCount(jobId)).toBe(1);
  });

  it('402 on an award the poster cannot fund keeps the job open; a later award after a top-up works', async () => {
    const { poster, jobId, bidIds } = await jobWithBids(1, [4, 3]);
    const refused = await api.post(`/jobs/${jobId}/award`, { bid_id: bidIds[1] }, poster.apiKey);
    expect([refused.status, refused.body.error]).toEqual([402, 'insufficient_balance']);
    expect((await getJob(jobId)).body.status).toBe('open');
    await api.credit(ADMIN_API_KEY, poster.agentId, 5);
    expect(
      (await api.post<Job>(`/jobs/${jobId}/award`, { bid_id: bidIds[1] }, poster.apiKey)).body.status,
    ).toBe('awarded');
    expect(await api.balanceUsd(poster.apiKey)).toBe(3);
  });

  it('an award retried many times at once creates one escrow', async () => {
    const { poster, jobId, bidIds } = await jobWithBids(10, [4, 3]);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        api.post<Job>(`/jobs/${jobId}/award`, { bid_id: bidIds[1] }, poster.apiKey),
      ),
    );
    for (const answer of answers) expect([200, 409, 503]).toContain(answer.status);
    await waitForJob(jobId, (job) => job.status === 'awarded', 'job awarded');
    expect(await escrowCount(jobId)).toBe(1);
    expect(await api.balanceUsd(poster.apiKey)).toBe(7);
  });

  it('a SIGKILL of market between creating the escrow and recording the award never makes two escrows', async () => {
    const { poster, jobId, bidIds } = await jobWithBids(10, [4, 3]);
    await system.services.market.stop();
    const crashing = await spawnService('market', { env: { ...env, MARKET_FAULT: 'after_escrows' } });
    await crashing.waitUntilReady();
    const cut = await api.post(`/jobs/${jobId}/award`, { bid_id: bidIds[0] }, poster.apiKey);
    expect(cut.status).toBe(503);
    expect((await crashing.exited).signal).toBe('SIGKILL');
    expect(await escrowCount(jobId)).toBe(1);
    system.services.market = await spawnService('market', { env });
    await system.services.market.waitUntilReady();
    // The poster retries; the recovery sweep may have finished it first. Either way: one escrow.
    const retried = await api.post<Job>(`/jobs/${jobId}/award`, { bid_id: bidIds[0] }, poster.apiKey);
    expect([200, 409]).toContain(retried.status);
    await waitForJob(jobId, (job) => job.status === 'awarded', 'job awarded after the crash');
    expect(await escrowCount(jobId)).toBe(1);
    expect(await api.balanceUsd(poster.apiKey)).toBe(6);
  }, 60_000);

  it('cancel: before award closes it; after award refunds the funded escrow in full', async () => {
    const open = await jobWithBids(10, [4]);
    expect((await api.post<Job>(`/jobs/${open.jobId}/cancel`, {}, open.poster.apiKey)).body.status).toBe(
      'cancelled',
    );
    expect((await bid(open.workers[0]!, open.jobId, 1)).body.error).toBe('bid_window_closed');
    const awarded = await jobWithBids(10, [4]);
    await api.post(`/jobs/${awarded.jobId}/award`, { bid_id: awarded.bidIds[0] }, awarded.poster.apiKey);
    expect(await api.balanceUsd(awarded.poster.apiKey)).toBe(6);
    expect((await api.post(`/jobs/${awarded.jobId}/cancel`, {}, awarded.workers[0]!.apiKey)).body.error).toBe(
      'not_poster',
    );
    expect(
      (await api.post<Job>(`/jobs/${awarded.jobId}/cancel`, {}, awarded.poster.apiKey)).body.status,
    ).toBe('cancelled');
    await ordersDrained();
    await waitFor('refund', async () => (await api.balanceUsd(awarded.poster.apiKey)) === 10, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    const escrowId = (await getJob(awarded.jobId)).body.awards[0]!.escrow_id;
    expect((await api.get<{ status: string }>(`/escrow/${escrowId}`)).body.status).toBe('refunded');
    // A job escrow cannot be cancelled by an agent: there is no such route; a direct complete now is refused.
    expect((await api.post(`/escrow/complete/${escrowId}`, {}, awarded.workers[0]!.apiKey)).status).toBe(409);
  });

  it('race: two workers complete at once, exactly one is paid, the others are refunded; duplicated events change nothing', async () => {
    const { poster, workers, jobId, bidIds } = await jobWithBids(20, [4, 3, 4.5], {
      race: { workers: 3, auto_release: true },
    });
    const awarded = await api.post<Job>(`/jobs/${jobId}/award`, { bid_ids: bidIds }, poster.apiKey);
    expect(awarded.status).toBe(200);
    expect(awarded.body.awards).toHaveLength(3);
    expect(await api.balanceUsd(poster.apiKey)).toBe(8.5);
    const escrowOf = (worker: Agent) =>
      awarded.body.awards.find((award) => award.worker_id === worker.agentId)!.escrow_id;
    // A race escrow cannot be released directly by the poster.
    expect((await api.post(`/escrow/release/${escrowOf(workers[0]!)}`, {}, poster.apiKey)).status).toBe(403);

    const completions = await Promise.all(
      [0, 1].map((index) =>
        api.post(
          `/escrow/complete/${escrowOf(workers[index]!)}`,
          { result_summary: 'done' },
          workers[index]!.apiKey,
        ),
      ),
    );
    for (const completion of completions) expect(completion.status).toBe(200);
    await waitForJob(
      jobId,
      (job) =>
        job.status === 'closed' &&
        job.awards.every((award) => award.escrow_status === 'released' || award.escrow_status === 'refunded'),
      'race settled',
    );
    await ordersDrained();

    // Re-publish the completions with new message ids (past the broker's dedup): the inbox and the decider ignore them.
    const js = jetstream(nats);
    const subjects = new SubjectPrefix(prefix);
    const completedEvents = await sql.query(
      "SELECT event_id, stream_id, stream_version, global_position, data, recorded_at FROM escrow.events WHERE type = 'completed' AND data->>'escrowId' = ANY($1)",
      [awarded.body.awards.map((award) => award.escrow_id)],
    );
    for (const row of completedEvents.rows as Array<{
      event_id: string;
      stream_id: string;
      stream_version: number;
      global_position: string;
      data: Record<string, unknown>;
      recorded_at: Date;
    }>) {
      const envelope: EventEnvelope = {
        id: row.event_id,
        type: 'completed',
        stream: row.stream_id,
        version: row.stream_version,
        position: Number(row.global_position),
        occurred_at: row.recorded_at.toISOString(),
        correlation_id: null,
        causation_id: null,
        schema: 1,
        data: row.data,
      };
      for (const copy of [1, 2])
        await js.publish(subjects.subject('escrow.events.completed'), JSON.stringify(envelope), {
          msgID: `${row.event_id}-copy-${copy}`,
        });
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const job = (await getJob(jobId)).body;
    const won = job.awards.filter((award) => award.race === 'won');
    expect(won).toHaveLength(1);
    expect(job.awards.filter((award) => award.escrow_status === 'released')).toHaveLength(1);
    expect(job.awards.filter((award) => award.escrow_status === 'refunded')).toHaveLength(2);
    const winner = workers.find((worker) => worker.agentId === won[0]!.worker_id)!;
    const price = won[0]!.price_usd;
    expect(await api.balanceUsd(poster.apiKey)).toBe(20 - price);
    expect(await api.balanceUsd(winner.apiKey)).toBeCloseTo(price * 0.99, 6);
    for (const loser of workers.filter((worker) => worker !== winner))
      expect(await api.balanceUsd(loser.apiKey)).toBe(0);
    // The third worker comes too late: its escrow was cancelled.
    expect((await api.post(`/escrow/complete/${escrowOf(workers[2]!)}`, {}, workers[2]!.apiKey)).status).toBe(
      409,
    );
  }, 60_000);

  it('an automatic award policy awards the lowest price when the bid window closes', async () => {
    const [poster, cheap, dear] = await Promise.all([register(), register(), register()]);
    await api.credit(ADMIN_API_KEY, poster.agentId, 10);
    const posted = await post(poster, { award_policy: 'lowest_price', bid_window_minutes: 1 });
    const jobId = posted.body.job_id;
    await bid(dear, jobId, 4);
    await bid(cheap, jobId, 2);
    // Let the window close now (the saga sweeps `due_at <= now()` with the database's clock).
    await sql.query('UPDATE market.deadlines SET due_at = now() WHERE job_id = $1', [jobId]);
    await waitForJob(jobId, (job) => job.status === 'awarded', 'automatic award');
    expect((await getJob(jobId)).body.awards.map((award) => award.worker_id)).toEqual([cheap.agentId]);
  });

  it('job events on the SSE stream: the poster sees bids arrive, each bidder learns the outcome', async () => {
    const [poster, winner, loser, outsider] = await Promise.all([
      register(),
      register(),
      register(),
      register(),
    ]);
    await api.credit(ADMIN_API_KEY, poster.agentId, 10);
    const streams = await Promise.all(
      [poster, winner, loser, outsider].map((agent) => openJobStream(system.gatewayUrl, agent.apiKey)),
    );
    try {
      const jobId = (await post(poster, {})).body.job_id;
      const winning = await bid(winner, jobId, 3);
      await bid(loser, jobId, 4);
      await api.post(`/jobs/${jobId}/award`, { bid_id: winning.body.bid_id }, poster.apiKey);
      const [posterSees, winnerSees, loserSees] = streams;
      await waitFor(
        'the poster sees the bids and the award',
        async () =>
          ['job_posted', 'bid_placed', 'bid_placed', 'award_started', 'job_awarded'].every(
            (type, index) => posterSees!.types()[index] === type,
          ),
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      await waitFor('the winner sees its award', async () => winnerSees!.types().includes('job_awarded'), {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      await waitFor('the loser learns the outcome', async () => loserSees!.types().includes('job_awarded'), {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      expect(loserSees!.types().filter((type) => type === 'bid_placed')).toHaveLength(1);
      expect(streams[3]!.types()).toEqual([]);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('ops verify is green after all of it: ledger, replays and market ↔ escrow cross-checks', async () => {
    await ordersDrained();
    const outcome = await runOps(['verify', 'all', '--grace', '0'], {
      databaseUrl: database.url,
      natsPrefix: prefix,
    });
    expect(outcome.output).toMatch(/market: ok/);
    expect(outcome.output).toMatch(/no violations/);
    expect(outcome.code).toBe(0);
  }, 60_000);
});

/** An SSE reader of GET /jobs/events/stream: the event types received so far. */
async function openJobStream(
  baseUrl: string,
  apiKey: string,
): Promise<{ types: () => string[]; close: () => void }> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}/jobs/events/stream`, {
    headers: { authorization: `Bearer ${apiKey}` },
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  const types: string[] = [];
  let buffer = '';
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .find((line) => line.startsWith('data: '));
        if (data) types.push((JSON.parse(data.slice(6)) as { type: string }).type);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
  })().catch(() => undefined);
  return { types: () => [...types], close: () => abort.abort() };
}
