import pg from 'pg';
import {
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  type TestDatabase,
  type TestSystem,
  runOps,
} from '@pf/testing';
import { ApiClient, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'escrow-eval-e2e-admin-key-0123456789';
const COMMISSION_BPS = 100n;
const REFERRAL_SHARE_BPS = 1_500n;

type Escrow = Record<string, unknown> & { escrow_id: string; status: string; error?: string };

/**
 * Issue #17 part 1 (docs/adr/0016) over HTTP, end to end: evaluator-only release and reject,
 * the evaluator's fee as one more split of the same post (every party's balance checked to the
 * micro-dollar, house included), deliverables, and the cancel by agreement in both orders, with
 * races between concurrent decisions. Ends with `ops verify` green.
 */
describe('escrow with an evaluator, deliverables and cancel by agreement', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let sql: pg.Client;
  const prefix = testNatsPrefix();

  const micros = (usd: number) => BigInt(Math.round(usd * 1_000_000));
  const balanceMicros = async (agent: Agent) => micros(await api.balanceUsd(agent.apiKey));
  const houseMicros = async () =>
    BigInt(
      (
        await sql.query(
          `SELECT coalesce(sum(amount_micros), 0)::text AS total FROM casino.ledger_entries WHERE account_id = 'house_revenue'`,
        )
      ).rows[0].total as string,
    );
  const eventCount = async (escrowId: string) =>
    Number(
      (
        await sql.query('SELECT count(*) AS n FROM escrow.events WHERE stream_id = $1', [
          `escrow-${escrowId}`,
        ])
      ).rows[0].n,
    );
  const storedEvents = async (escrowId: string) =>
    (
      await sql.query('SELECT type, data FROM escrow.events WHERE stream_id = $1 ORDER BY stream_version', [
        `escrow-${escrowId}`,
      ])
    ).rows as Array<{ type: string; data: Record<string, unknown> }>;

  /** Creator (funded, referred by `referrer`), worker, evaluator, an outsider and the referrer. */
  async function cast(fundUsd = 20) {
    const referrer = await api.register();
    const [creator, worker, evaluator, outsider] = await Promise.all([
      api.register({ referral_code: referrer.referralCode }),
      api.register(),
      api.register(),
      api.register(),
    ]);
    await api.credit(ADMIN_API_KEY, creator.agentId, fundUsd);
    return { creator, worker, evaluator, outsider, referrer };
  }

  const create = (creator: Agent, worker: Agent, body: Record<string, unknown> = {}) =>
    api.post<Escrow>(
      '/escrow/create',
      { amount_usd: 5, description: 'Label 500 images', counterparty_agent_id: worker.agentId, ...body },
      creator.apiKey,
    );
  const act = (action: string, escrowId: string, agent: Agent, body: Record<string, unknown> = {}) =>
    api.post<Escrow>(`/escrow/${action}/${escrowId}`, body, agent.apiKey);
  const view = (escrowId: string, agent?: Agent) => api.get<Escrow>(`/escrow/${escrowId}`, agent?.apiKey);

  /** An escrow with an evaluator, completed by the worker. */
  async function completedWithEvaluator(feeBps = 500, amountUsd = 5) {
    const people = await cast();
    const created = await create(people.creator, people.worker, {
      amount_usd: amountUsd,
      evaluator_agent_id: people.evaluator.agentId,
      evaluator_fee_bps: feeBps,
    });
    expect(created.status).toBe(201);
    const id = created.body.escrow_id;
    expect((await act('complete', id, people.worker, { result_summary: 'done' })).status).toBe(200);
    return { ...people, id };
  }

  beforeAll(async () => {
    database = await createTestDatabase('escrowevale2e');
    system = await startSystem({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      FAUCET_IP_LIMIT_PER_DAY: '0',
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

  it('refuses a bad evaluator or fee at create with a code, and writes nothing', async () => {
    const { creator, worker, evaluator } = await cast();
    const before = Number((await sql.query('SELECT count(*) AS n FROM escrow.events')).rows[0].n);
    const unregistered = 'ag_0123456789ab';
    for (const [body, status, code] of [
      [{ evaluator_agent_id: 'judge' }, 400, 'invalid_evaluator'],
      [{ evaluator_agent_id: 42 }, 400, 'invalid_evaluator'],
      [{ evaluator_agent_id: creator.agentId }, 400, 'invalid_evaluator'],
      [{ evaluator_agent_id: worker.agentId }, 400, 'invalid_evaluator'],
      [{ evaluator_agent_id: unregistered }, 404, 'evaluator_not_found'],
      [{ evaluator_agent_id: evaluator.agentId, evaluator_fee_bps: 1_001 }, 400, 'invalid_evaluator_fee'],
      [{ evaluator_agent_id: evaluator.agentId, evaluator_fee_bps: -1 }, 400, 'invalid_evaluator_fee'],
      [{ evaluator_agent_id: evaluator.agentId, evaluator_fee_bps: 2.5 }, 400, 'invalid_evaluator_fee'],
      [{ evaluator_agent_id: evaluator.agentId, evaluator_fee_bps: '100' }, 400, 'invalid_evaluator_fee'],
      [{ evaluator_fee_bps: 100 }, 400, 'invalid_evaluator_fee'],
    ] as Array<[Record<string, unknown>, number, string]>) {
      const answer = await create(creator, worker, body);
      expect({ body, status: answer.status, error: answer.body.error }).toEqual({
        body,
        status,
        error: code,
      });
    }
    expect(Number((await sql.query('SELECT count(*) AS n FROM escrow.events')).rows[0].n)).toBe(before);
    expect(await api.balanceUsd(creator.apiKey)).toBe(20);
  });

  it('only the evaluator releases or rejects: 403 not_evaluator for creator, worker and outsider, nothing changed', async () => {
    const { creator, worker, evaluator, outsider, referrer, id } = await completedWithEvaluator();
    const created = await view(id, creator);
    expect(created.body).toMatchObject({ evaluator_id: evaluator.agentId, evaluator_fee_bps: 500 });
    const balances = async () =>
      Promise.all([creator, worker, evaluator, outsider, referrer].map((agent) => balanceMicros(agent)));
    const [beforeBalances, beforeEvents] = [await balances(), await eventCount(id)];
    for (const agent of [creator, worker, outsider]) {
      for (const [action, body] of [
        ['release', {}],
        ['reject', { reason: 'not good' }],
        ['reject', { reason: 'not good', refund: true }],
      ] as const) {
        const answer = await act(action, id, agent, body);
        expect({ action, status: answer.status, error: answer.body.error }).toEqual({
          action,
          status: 403,
          error: 'not_evaluator',
        });
      }
    }
    expect(await balances()).toEqual(beforeBalances);
    expect(await eventCount(id)).toBe(beforeEvents);
    expect((await view(id, creator)).body.status).toBe('completed');
    // The evaluator may not do the parties' parts either.
    expect((await act('dispute', id, evaluator)).status).toBe(403);
    expect((await act('cancel', id, evaluator)).status).toBe(403);
    expect((await act('consent-cancel', id, evaluator)).status).toBe(403);
    // The creator can still dispute.
    const disputed = await act('dispute', id, creator, { reason: 'wrong labels' });
    expect(disputed.body.status).toBe('disputed');
  });

  it('keeps a deliverable: refused when malformed (nothing written), shown to both parties and the evaluator and in the event log', async () => {
    const { creator, worker, evaluator, outsider } = await cast();
    const created = await create(creator, worker, { evaluator_agent_id: evaluator.agentId });
    const id = created.body.escrow_id;
    const before = await eventCount(id);
    for (const deliverable of [
      {},
      'https://files.example/labels.json',
      { url: 'ftp://files.example/labels.json' },
      { url: `https://files.example/${'a'.repeat(2_048)}` },
      { sha256: 'abc' },
      { sha256: 'g'.repeat(64) },
      { mime: 'not a type' },
      { url: 'https://files.example/x', size: 10 },
    ]) {
      const answer = await act('complete', id, worker, { deliverable });
      expect({ deliverable, status: answer.status, error: answer.body.error }).toEqual({
        deliverable,
        status: 400,
        error: 'invalid_deliverable',
      });
    }
    expect(await eventCount(id)).toBe(before);
    const digest = 'AB'.repeat(32);
    const deliverable = {
      url: 'https://files.example/labels.json',
      sha256: digest,
      mime: 'application/json',
    };
    const completed = await act('complete', id, worker, { result_summary: '500 labels', deliverable });
    expect(completed.status).toBe(200);
    const stored = { ...deliverable, sha256: digest.toLowerCase() };
    expect(completed.body.deliverable).toEqual(stored);
    for (const agent of [creator, worker, evaluator]) {
      const seen = await view(id, agent);
      expect(seen.body.deliverable).toEqual(stored);
      const history = seen.body.events as Array<{ type: string; deliverable?: unknown }>;
      expect(history.find((entry) => entry.type === 'completed')?.deliverable).toEqual(stored);
    }
    expect((await view(id, outsider)).body).not.toHaveProperty('deliverable');
    // The evaluator finds the work waiting for its judgement.
    const waiting = await api.get<{ escrows: Array<{ escrow_id: string }> }>(
      '/escrow/pending?role=evaluator&status=completed',
      evaluator.apiKey,
    );
    expect(waiting.body.escrows.map((escrow) => escrow.escrow_id)).toEqual([id]);
    const completedEvent = (await storedEvents(id)).find((event) => event.type === 'completed');
    expect(completedEvent?.data.deliverable).toEqual(stored);
  });

  it('reject → funded → complete again → release: the fee is one more split, every party and the house exact to the micro', async () => {
    // An amount and fee whose splits all round: 3.333333 USD, fee 7.77%, commission 1%, referral 15% of it.
    const { creator, worker, evaluator, referrer, id } = await completedWithEvaluator(777, 3.333333);
    const amount = 3_333_333n;
    const before = {
      creator: await balanceMicros(creator),
      worker: await balanceMicros(worker),
      evaluator: await balanceMicros(evaluator),
      referrer: await balanceMicros(referrer),
      house: await houseMicros(),
    };
    const rejected = await act('reject', id, evaluator, { reason: 'Labels 200-260 are wrong' });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({
      status: 'funded',
      refunded: false,
      rejection_reason: 'Labels 200-260 are wrong',
    });
    for (const agent of [creator, worker])
      expect((await view(id, agent)).body).toMatchObject({
        status: 'funded',
        rejection_reason: 'Labels 200-260 are wrong',
      });
    // Still funded: the evaluator cannot reject again until the work comes back.
    expect((await act('reject', id, evaluator, { reason: 'again' })).body.error).toBe('invalid_status');
    expect((await act('complete', id, worker, { result_summary: 'fixed' })).body.status).toBe('completed');
    const released = await act('release', id, evaluator);
    expect(released.status).toBe(200);
    const commission = (amount * COMMISSION_BPS) / 10_000n;
    const referral = (commission * REFERRAL_SHARE_BPS) / 10_000n;
    const fee = (amount * 777n) / 10_000n;
    const toWorker = amount - commission - fee;
    expect(released.body).toMatchObject({
      status: 'released',
      commission_paid: Number(commission) / 1e6,
      commission_usd: Number(commission) / 1e6,
      evaluator_id: evaluator.agentId,
      evaluator_fee_usd: Number(fee) / 1e6,
      released_to_counterparty: Number(toWorker) / 1e6,
    });
    const after = {
      creator: await balanceMicros(creator),
      worker: await balanceMicros(worker),
      evaluator: await balanceMicros(evaluator),
      referrer: await balanceMicros(referrer),
      house: await houseMicros(),
    };
    // The creator's amount was held at create (before `before`), so the release moves nothing of its balance.
    expect(after.creator - before.creator).toBe(0n);
    expect(after.worker - before.worker).toBe(toWorker);
    expect(after.evaluator - before.evaluator).toBe(fee);
    expect(after.referrer - before.referrer).toBe(referral);
    expect(after.house - before.house).toBe(commission - referral);
    expect(toWorker + fee + referral + (commission - referral)).toBe(amount);
    expect(await balanceMicros(creator)).toBe(micros(20) - amount);
    const types = (await storedEvents(id)).map((event) => event.type);
    expect(types).toEqual(['opened', 'funded', 'completed', 'evaluation_rejected', 'completed', 'released']);
  });

  it('streams the escrow to its evaluator too: the deliverable and the rejection, in the REST dialect', async () => {
    const { creator, worker, evaluator, outsider } = await cast();
    const streams = await Promise.all(
      [evaluator, outsider].map((agent) => openEscrowStream(api.baseUrl, agent.apiKey)),
    );
    try {
      const id = (await create(creator, worker, { evaluator_agent_id: evaluator.agentId })).body.escrow_id;
      const deliverable = { url: 'https://files.example/a.csv', sha256: 'cd'.repeat(32), mime: 'text/csv' };
      await act('complete', id, worker, { deliverable });
      await act('reject', id, evaluator, { reason: 'wrong period' });
      const seen = () => streams[0]!.events().filter((event) => event.data.escrow_id === id);
      for (let waited = 0; seen().length < 3 && waited < 10_000; waited += 100)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen().map((event) => event.type)).toEqual(['funded', 'completed', 'evaluation_rejected']);
      expect(seen()[1]!.data.deliverable).toEqual(deliverable);
      expect(seen()[2]!.data).toMatchObject({
        status: 'funded',
        rejection_reason: 'wrong period',
        actor: evaluator.agentId,
      });
      expect(streams[1]!.events().filter((event) => event.data.escrow_id === id)).toEqual([]);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('reject with refund gives the creator everything back; nobody else is paid', async () => {
    const { creator, worker, evaluator, id } = await completedWithEvaluator();
    const house = await houseMicros();
    const refunded = await act('reject', id, evaluator, { reason: 'fabricated', refund: true });
    expect(refunded.status).toBe(200);
    expect(refunded.body).toMatchObject({ status: 'refunded', refunded: true, amount_refunded: 5 });
    expect(await api.balanceUsd(creator.apiKey)).toBe(20);
    expect(await api.balanceUsd(worker.apiKey)).toBe(0);
    expect(await api.balanceUsd(evaluator.apiKey)).toBe(0);
    expect(await houseMicros()).toBe(house);
    expect((await act('release', id, evaluator)).body.error).toBe('invalid_status');
  });

  it('refuses bad reject input with a code before anything is written', async () => {
    const { evaluator, id } = await completedWithEvaluator();
    const before = await eventCount(id);
    for (const [body, code] of [
      [{}, 'invalid_reject_reason'],
      [{ reason: 7 }, 'invalid_reject_reason'],
      [{ reason: '   ' }, 'invalid_reject_reason'],
      [{ reason: 'x'.repeat(2_001) }, 'invalid_reject_reason'],
      [{ reason: 'no', refund: 'yes' }, 'invalid_request'],
    ] as Array<[Record<string, unknown>, string]>) {
      const answer = await act('reject', id, evaluator, body);
      expect({ body, status: answer.status, error: answer.body.error }).toEqual({
        body,
        status: 400,
        error: code,
      });
    }
    expect(await eventCount(id)).toBe(before);
    // Left sent back (last event evaluation_rejected): ops verify at the end must count its hold as live.
    expect((await act('reject', id, evaluator, { reason: 'try again' })).body.status).toBe('funded');
  });

  it('cancels by agreement in both orders: a full refund, no commission', async () => {
    const { creator, worker, evaluator } = await cast();
    const house = await houseMicros();
    // Creator first, then the counterparty's consent settles it.
    const first = (await create(creator, worker)).body.escrow_id;
    const asked = await act('cancel', first, creator);
    expect(asked.body).toMatchObject({ status: 'funded', cancelled: false });
    expect(asked.body.cancel_requested_at).toEqual(expect.any(String));
    expect(await api.balanceUsd(creator.apiKey)).toBe(15);
    const agreed = await act('consent-cancel', first, worker);
    expect(agreed.body).toMatchObject({ status: 'refunded', cancelled: true, amount_refunded: 5 });
    expect(await api.balanceUsd(creator.apiKey)).toBe(20);
    // Counterparty first (on a completed escrow with an evaluator), then the creator's cancel.
    const second = (
      await create(creator, worker, { evaluator_agent_id: evaluator.agentId, evaluator_fee_bps: 1_000 })
    ).body.escrow_id;
    await act('complete', second, worker);
    expect((await act('consent-cancel', second, worker)).body).toMatchObject({
      status: 'completed',
      cancelled: false,
    });
    expect((await view(second, creator)).body.cancel_consented_at).toEqual(expect.any(String));
    expect((await act('cancel', second, creator)).body).toMatchObject({
      status: 'refunded',
      cancelled: true,
    });
    expect(await api.balanceUsd(creator.apiKey)).toBe(20);
    expect(await api.balanceUsd(worker.apiKey)).toBe(0);
    expect(await api.balanceUsd(evaluator.apiKey)).toBe(0);
    expect(await houseMicros()).toBe(house);
    // A third one is left with the creator's request only: its money stays held (and ops verify
    // at the end counts that hold as live).
    const third = (await create(creator, worker)).body.escrow_id;
    expect((await act('cancel', third, creator)).body).toMatchObject({ status: 'funded', cancelled: false });
    expect(await api.balanceUsd(creator.apiKey)).toBe(15);
    expect((await storedEvents(second)).map((event) => event.type)).toEqual([
      'opened',
      'funded',
      'completed',
      'cancel_consented',
      'mutually_cancelled',
    ]);
  });

  it('without consent the creator cannot claw the money back; only the parties may take the halves', async () => {
    const { creator, worker, outsider } = await cast();
    const id = (await create(creator, worker)).body.escrow_id;
    for (let attempt = 0; attempt < 3; attempt += 1)
      expect((await act('cancel', id, creator)).body).toMatchObject({ status: 'funded', cancelled: false });
    expect(await api.balanceUsd(creator.apiKey)).toBe(15);
    const events = await eventCount(id);
    for (const [action, agent] of [
      ['cancel', worker],
      ['cancel', outsider],
      ['consent-cancel', creator],
      ['consent-cancel', outsider],
    ] as const) {
      const answer = await act(action, id, agent);
      expect({ action, status: answer.status, error: answer.body.error }).toEqual({
        action,
        status: 403,
        error: 'forbidden',
      });
    }
    expect(await eventCount(id)).toBe(events);
    // The worker still gets paid when the creator releases: the request gave the creator nothing.
    await act('complete', id, worker);
    expect((await act('release', id, creator)).body.status).toBe('released');
    expect(await api.balanceUsd(worker.apiKey)).toBe(4.95);
  });

  it('races: concurrent release and refund by the evaluator, and concurrent cancel halves, end as one serial order', async () => {
    for (let round = 0; round < 3; round += 1) {
      const { creator, worker, evaluator, id } = await completedWithEvaluator(1_000);
      const [released, refunded] = await Promise.all([
        act('release', id, evaluator),
        act('reject', id, evaluator, { reason: 'too late', refund: true }),
      ]);
      const winners = [released, refunded].filter((answer) => answer.status === 200);
      expect(winners).toHaveLength(1);
      const loser = released.status === 200 ? refunded : released;
      expect(loser.body.error).toBe('invalid_status');
      const settled = (await storedEvents(id)).map((event) => event.type).slice(-1)[0];
      if (released.status === 200) {
        expect(settled).toBe('released');
        expect(await api.balanceUsd(worker.apiKey)).toBe(4.45);
        expect(await api.balanceUsd(evaluator.apiKey)).toBe(0.5);
        expect(await api.balanceUsd(creator.apiKey)).toBe(15);
      } else {
        expect(settled).toBe('evaluator_refunded');
        expect(await api.balanceUsd(worker.apiKey)).toBe(0);
        expect(await api.balanceUsd(evaluator.apiKey)).toBe(0);
        expect(await api.balanceUsd(creator.apiKey)).toBe(20);
      }
    }
    for (let round = 0; round < 3; round += 1) {
      const { creator, worker } = await cast();
      const id = (await create(creator, worker)).body.escrow_id;
      const answers = await Promise.all([
        act('cancel', id, creator),
        act('consent-cancel', id, worker),
        act('cancel', id, creator),
        act('consent-cancel', id, worker),
      ]);
      // Each answer is the outcome after some serial order: waiting, refunded, or (a repeat after
      // the refund) invalid_status; never an error of another kind, and exactly one refund.
      for (const answer of answers) expect([200, 409]).toContain(answer.status);
      expect(answers.some((answer) => answer.body.cancelled === true)).toBe(true);
      const types = (await storedEvents(id)).map((event) => event.type);
      expect(types.filter((type) => type === 'mutually_cancelled')).toHaveLength(1);
      expect(types.filter((type) => type === 'cancel_requested' || type === 'cancel_consented')).toHaveLength(
        1,
      );
      expect(await api.balanceUsd(creator.apiKey)).toBe(20);
    }
  }, 60_000);

  it('ops verify is green after all of it: ledger, replays (evaluator columns included) and cross-checks', async () => {
    const outcome = await runOps(['verify', 'all', '--grace', '0'], {
      databaseUrl: database.url,
      natsPrefix: prefix,
    });
    expect(outcome.output).toMatch(/no violations/);
    expect(outcome.code).toBe(0);
    const check = await api.get<{ ok: boolean; total_usd: number; violations: unknown[] }>(
      '/admin/ledger/check',
      ADMIN_API_KEY,
    );
    expect(check.body).toMatchObject({ ok: true, total_usd: 0, violations: [] });
  }, 60_000);
});

/** An SSE reader of GET /escrow/events/stream: the events received so far (type and REST data). */
async function openEscrowStream(
  baseUrl: string,
  apiKey: string,
): Promise<{ events: () => Array<{ type: string; data: Record<string, unknown> }>; close: () => void }> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}/escrow/events/stream`, {
    headers: { authorization: `Bearer ${apiKey}` },
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  const events: Array<{ type: string; data: Record<string, unknown> }> = [];
  let buffer = '';
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const line = buffer
          .slice(0, end)
          .split('\n')
          .find((text) => text.startsWith('data: '));
        if (line) events.push(JSON.parse(line.slice(6)) as { type: string; data: Record<string, unknown> });
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
  })().catch(() => undefined);
  return { events: () => [...events], close: () => abort.abort() };
}
