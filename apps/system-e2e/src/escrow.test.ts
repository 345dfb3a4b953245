import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { casinoCommands, SubjectPrefix, type EventEnvelope, type LedgerCheckReport } from '@pf/contracts';
import { CommandClient } from '@pf/messaging';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  sleep,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';

const ADMIN_API_KEY = 'escrow-e2e-admin-key-0123456789';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

interface Agent {
  id: string;
  key: string;
  referralCode: string;
}

/**
 * Escrow over HTTP, end to end: gateway → escrow → casino, with the timeout saga and the event
 * stream. The first test is the marketplace article's flow (steps 1–5 and the orchestrator's
 * wait_and_release loop) as its Python client sends it, with only the base URL changed.
 */
describe('escrow over HTTP (gateway → escrow → casino)', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let nats: NatsConnection;
  const prefix = testNatsPrefix();
  const subjects = new SubjectPrefix(prefix);

  const request = async (
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const hasType = Object.keys(options.headers ?? {}).some((name) => name.toLowerCase() === 'content-type');
    const response = await fetch(`${system.gatewayUrl}${path}`, {
      method,
      headers: {
        ...(options.body !== undefined && !hasType ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      body:
        options.body === undefined
          ? undefined
          : typeof options.body === 'string'
            ? options.body
            : JSON.stringify(options.body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const auth = (agent: Agent) => ({ authorization: `Bearer ${agent.key}` });
  const register = async (referralCode?: string): Promise<Agent> => {
    const { body } = await request('POST', '/api/v1/auth/register', {
      body: referralCode ? { referral_code: referralCode } : {},
    });
    const agent = body.agent as { id: string; api_key: string };
    return { id: agent.id, key: agent.api_key, referralCode: body.referral_code as string };
  };
  const credit = (agent: Agent, amountUsd: number) =>
    request('POST', '/admin/credit', {
      body: { agent_id: agent.id, amount_usd: amountUsd, reference: `e2e-${agent.id}-${amountUsd}` },
      headers: { authorization: `Bearer ${ADMIN_API_KEY}` },
    });
  const balance = async (agent: Agent) =>
    (await request('GET', '/api/v1/auth/balance', { headers: auth(agent) })).body;
  const createEscrow = (
    creator: Agent,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) =>
    request('POST', '/escrow/create', {
      body: { description: 'Label 100 images', ...body },
      headers: { ...auth(creator), ...headers },
    });
  const funded = async (fund = 10) => {
    const [creator, worker] = await Promise.all([register(), register()]);
    if (fund > 0) await credit(creator, fund);
    return { creator, worker };
  };

  beforeAll(async () => {
    database = await createTestDatabase('escrowe2e');
    system = await startSystem({
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      ESCROW_MIN_TIMEOUT_SECONDS: '1',
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      FAUCET_IP_LIMIT_PER_DAY: '0',
    });
    nats = await connectTestNats();
  }, 90_000);

  afterAll(async () => {
    await system?.stop();
    if (nats) {
      await deletePrefixedStreams(nats, prefix).catch(() => undefined);
      await nats.close();
    }
    await database?.drop();
  });

  it("runs the article's marketplace flow unchanged: create, pending, complete, wait_and_release", async () => {
    // Step 1: register two agents; the worker claims $1 from the faucet; the orchestrator is funded.
    const orchestrator = await register();
    const worker = await register();
    await credit(orchestrator, 10);
    const claim = await request('POST', '/faucet/claim', { body: { agent_casino_id: worker.id } });
    expect(claim.status).toBe(200);

    // Step 2: create_job.
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${orchestrator.key}` };
    const job = await request('POST', '/escrow/create', {
      headers,
      body: {
        amount_usd: 5.0,
        description: 'Analyze BTC price correlation with gold over 30 days',
        counterparty_agent_id: worker.id,
        timeout_hours: 4,
      },
    });
    expect(job.status).toBe(201);
    expect(job.body).toMatchObject({
      amount_usd: 5,
      commission_usd: 0.05,
      net_to_counterparty: 4.95,
      status: 'funded',
      creator_id: orchestrator.id,
      counterparty_id: worker.id,
      timeout_hours: 4,
    });
    const escrowId = job.body.escrow_id as string;
    expect(escrowId).toMatch(/^esc_[0-9a-f]{16}$/);
    expect(
      Date.parse(job.body.auto_release_at as string) - Date.parse(job.body.created_at as string),
    ).toBeGreaterThan(4 * 3_600_000 - 2_000);

    // Step 3: check_for_jobs.
    const jobs = await request('GET', '/escrow/pending', {
      headers: { Authorization: `Bearer ${worker.key}` },
    });
    expect(jobs.body.escrows).toEqual([
      expect.objectContaining({
        escrow_id: escrowId,
        description: 'Analyze BTC price correlation with gold over 30 days',
        amount_usd: 5,
      }),
    ]);

    // Step 4: complete_task.
    const done = await request('POST', `/escrow/complete/${escrowId}`, {
      headers: { Authorization: `Bearer ${worker.key}` },
      body: { result_summary: 'BTC/Gold correlation: 0.34 over 30d, inverse during USD stress events' },
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ escrow_id: escrowId, status: 'completed' });

    // Step 5 through the orchestrator's loop: poll GET /escrow/{id} with its headers, release on
    // "completed" with Content-Type: application/json and no body.
    const waitAndRelease = async (pollMs = 100, maxWaitMs = 10_000) => {
      for (let elapsedMs = 0; elapsedMs < maxWaitMs; elapsedMs += pollMs) {
        const current = await request('GET', `/escrow/${escrowId}`, { headers });
        if (current.body.status === 'completed')
          return request('POST', `/escrow/release/${escrowId}`, { headers });
        if (current.body.status === 'released') return current;
        await sleep(pollMs);
      }
      throw new Error(`escrow ${escrowId} timed out`);
    };
    const released = await waitAndRelease();
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({
      escrow_id: escrowId,
      status: 'released',
      amount_released: 4.95,
      released_to_counterparty: 4.95,
      commission: 0.05,
      referral_commission: 0,
      counterparty_id: worker.id,
    });
    expect(await balance(worker)).toMatchObject({ balance_usd: 5.95 });
    expect(await balance(orchestrator)).toMatchObject({ balance_usd: 5, held_usd: 0 });

    // Anyone may poll without a key: the public view only.
    const open = await request('GET', `/escrow/${escrowId}`);
    expect(open.body).toEqual({
      escrow_id: escrowId,
      status: 'released',
      amount_usd: 5,
      created_at: job.body.created_at,
      auto_release_at: job.body.auto_release_at,
      completed_at: expect.any(String),
      released_at: expect.any(String),
      refunded_at: null,
      disputed_at: null,
    });
    const participant = await request('GET', `/escrow/${escrowId}`, { headers: auth(worker) });
    expect(participant.body).toMatchObject({
      description: 'Analyze BTC price correlation with gold over 30 days',
      result_summary: 'BTC/Gold correlation: 0.34 over 30d, inverse during USD stress events',
      creator_id: orchestrator.id,
      counterparty_id: worker.id,
      commission_usd: 0.05,
      net_to_counterparty: 4.95,
    });
    expect(
      (participant.body.events as Array<{ type: string; actor: string }>).map(({ type, actor }) => [
        type,
        actor,
      ]),
    ).toEqual([
      ['opened', orchestrator.id],
      ['funded', 'system'],
      ['completed', worker.id],
      ['released', orchestrator.id],
    ]);
  });

  it('publishes every event of a lifecycle, in order, to a durable JetStream subscriber on escrow.events.>', async () => {
    const manager = await jetstreamManager(nats);
    const stream = subjects.streamName('ESCROW_EVENTS');
    await manager.consumers.add(stream, {
      durable_name: 'e2e-subscriber',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: subjects.subject('escrow.events.>'),
    });
    const referrer = await register();
    const creator = await register(referrer.referralCode);
    const worker = await register();
    await credit(creator, 10);
    const { body } = await createEscrow(creator, { amount_usd: 2, counterparty_agent_id: worker.id });
    const escrowId = body.escrow_id as string;
    await request('POST', `/escrow/complete/${escrowId}`, { headers: auth(worker) });
    await request('POST', `/escrow/release/${escrowId}`, { headers: auth(creator) });

    const consumer = await jetstream(nats).consumers.get(stream, 'e2e-subscriber');
    const received: Array<{ subject: string; envelope: EventEnvelope }> = [];
    await waitFor(
      'four events of the escrow',
      async () => {
        const batch = await consumer.fetch({ max_messages: 50, expires: 1_000 });
        for await (const message of batch) {
          const envelope = message.json<EventEnvelope>();
          if (envelope.stream === `escrow-${escrowId}`) received.push({ subject: message.subject, envelope });
          message.ack();
        }
        return received.length >= 4;
      },
      { timeoutMs: 15_000 },
    );
    expect(received.map(({ subject }) => subject)).toEqual(
      ['opened', 'funded', 'completed', 'released'].map((type) => subjects.subject(`escrow.events.${type}`)),
    );
    expect(received.map(({ envelope }) => envelope.version)).toEqual([1, 2, 3, 4]);
    const [opened, , , released] = received.map(({ envelope }) => envelope);
    expect(opened).toMatchObject({
      type: 'opened',
      schema: 1,
      data: {
        escrowId,
        creatorId: creator.id,
        counterpartyId: worker.id,
        amountMicros: '2000000',
        commissionBps: 100,
        referrerId: referrer.id,
      },
    });
    expect(opened!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(released).toMatchObject({
      type: 'released',
      data: {
        escrowId,
        by: creator.id,
        trigger: 'creator',
        amountMicros: '2000000',
        payout: {
          counterpartyMicros: '1980000',
          commissionMicros: '20000',
          houseMicros: '17000',
          referrerMicros: '3000',
          referrerId: referrer.id,
          creatorMicros: '0',
        },
      },
    });
    expect(received.map(({ envelope }) => envelope.position)).toEqual(
      [...received.map(({ envelope }) => envelope.position)].sort((a, b) => a - b),
    );
    await manager.consumers.delete(stream, 'e2e-subscriber');
  });

  it('answers each create error with its code and status, and 402 with balance_usd', async () => {
    const { creator, worker } = await funded(3);
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ amount_usd: 0.05 }, 400, 'invalid_amount'],
      [{ amount_usd: 1.0000001 }, 400, 'invalid_amount'],
      [{ amount_usd: -1 }, 400, 'invalid_amount'],
      [{ amount_usd: 'NaN' }, 400, 'invalid_amount'],
      [{ amount_usd: 2_000_000 }, 400, 'invalid_amount'],
      [{ amount_usd: undefined }, 400, 'invalid_amount'],
      [{ description: 'ab' }, 400, 'invalid_description'],
      [{ description: 'x'.repeat(1_001) }, 400, 'invalid_description'],
      [{ description: undefined }, 400, 'invalid_description'],
      [{ counterparty_agent_id: undefined }, 400, 'invalid_counterparty'],
      [{ counterparty_agent_id: 'bob' }, 400, 'invalid_counterparty'],
      [{ counterparty_agent_id: creator.id }, 400, 'self_escrow'],
      [{ timeout_hours: 0 }, 400, 'invalid_timeout'],
      [{ timeout_hours: 721 }, 400, 'invalid_timeout'],
      [{ timeout_hours: 0.0001 }, 400, 'invalid_timeout'],
      [{ timeout_hours: 'soon' }, 400, 'invalid_timeout'],
      [{ counterparty_agent_id: 'ag_000000000000' }, 404, 'counterparty_not_found'],
    ];
    for (const [change, status, code] of cases) {
      const answer = await createEscrow(creator, {
        amount_usd: 1,
        counterparty_agent_id: worker.id,
        ...change,
      });
      expect([answer.status, answer.body.error]).toEqual([status, code]);
    }
    const broke = await createEscrow(creator, { amount_usd: 4, counterparty_agent_id: worker.id });
    expect(broke).toEqual({
      status: 402,
      body: { error: 'insufficient_balance', message: expect.any(String), balance_usd: 3 },
    });
    expect((await request('POST', '/escrow/create', { body: { amount_usd: 1 } })).status).toBe(401);
    expect(await balance(creator)).toMatchObject({ balance_usd: 3, held_usd: 0 });
  });

  it('authorizes by role (403 forbidden, the same whatever the state), 404 for unknown ids, 409 for the wrong state', async () => {
    const { creator, worker } = await funded();
    const outsider = await register();
    const first = (await createEscrow(creator, { amount_usd: 1, counterparty_agent_id: worker.id })).body
      .escrow_id as string;
    const second = (await createEscrow(creator, { amount_usd: 1, counterparty_agent_id: worker.id })).body
      .escrow_id as string;
    await request('POST', `/escrow/complete/${second}`, { headers: auth(worker) });
    const refusals = new Set<string>();
    for (const escrowId of [first, second]) {
      for (const [action, agent] of [
        ['complete', creator],
        ['release', worker],
        ['decline', creator],
        ['dispute', outsider],
        ['release', outsider],
      ] as const) {
        const answer = await request('POST', `/escrow/${action}/${escrowId}`, { headers: auth(agent) });
        expect(answer.status).toBe(403);
        refusals.add(JSON.stringify(answer.body));
      }
    }
    expect(refusals.size).toBe(1);
    expect(await request('POST', `/escrow/complete/${second}`, { headers: auth(worker) })).toMatchObject({
      status: 409,
      body: { error: 'invalid_status' },
    });
    expect(
      await request('POST', `/escrow/release/esc_0000000000000000`, { headers: auth(creator) }),
    ).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect(await request('GET', `/escrow/esc_0000000000000000`)).toMatchObject({
      status: 404,
      body: { error: 'not_found' },
    });
    const outsiderView = await request('GET', `/escrow/${first}`, { headers: auth(outsider) });
    expect(outsiderView.body.description).toBeUndefined();
    expect(
      await request('POST', `/escrow/complete/${first}`, {
        headers: auth(worker),
        body: { result_summary: 'x'.repeat(10_241) },
      }),
    ).toMatchObject({
      status: 400,
      body: { error: 'invalid_result_summary' },
    });
  });

  it('lists pending escrows and stats on their own routes, not as escrow ids', async () => {
    const { creator, worker } = await funded();
    const escrowId = (await createEscrow(creator, { amount_usd: 1, counterparty_agent_id: worker.id })).body
      .escrow_id;
    const mine = await request('GET', '/escrow/pending?role=creator', { headers: auth(creator) });
    expect(mine.body.escrows).toEqual([
      expect.objectContaining({ escrow_id: escrowId, status: 'funded', counterparty_id: worker.id }),
    ]);
    expect((await request('GET', '/escrow/pending', { headers: auth(creator) })).body.escrows).toEqual([]);
    expect((await request('GET', '/escrow/pending?status=bogus', { headers: auth(creator) })).status).toBe(
      400,
    );
    const stats = await request('GET', '/escrow/stats');
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({
      total_created: expect.any(Number),
      total_volume_usd: expect.any(Number),
      total_commission_usd: expect.any(Number),
      commission_rate: 0.01,
    });
  });

  it('declines with a full refund; a dispute waits for the operator, who splits it', async () => {
    const { creator, worker } = await funded();
    const declined = (await createEscrow(creator, { amount_usd: 2, counterparty_agent_id: worker.id })).body
      .escrow_id as string;
    expect(await request('POST', `/escrow/decline/${declined}`, { headers: auth(worker) })).toMatchObject({
      status: 200,
      body: { status: 'refunded', amount_refunded: 2 },
    });
    const disputed = (await createEscrow(creator, { amount_usd: 4, counterparty_agent_id: worker.id })).body
      .escrow_id as string;
    expect(
      await request('POST', `/escrow/dispute/${disputed}`, {
        headers: auth(worker),
        body: { reason: 'scope changed' },
      }),
    ).toMatchObject({ status: 200, body: { status: 'disputed' } });
    const resolve = (body: unknown, key = ADMIN_API_KEY) =>
      request('POST', `/admin/escrow/${disputed}/resolve`, {
        body,
        headers: { authorization: `Bearer ${key}` },
      });
    expect(
      (await resolve({ outcome: 'split', counterparty_share_bps: 5_000 }, 'not-the-admin-key-000')).status,
    ).toBe(401);
    expect(await resolve({ outcome: 'halve' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_resolution' },
    });
    expect(await resolve({ outcome: 'split', counterparty_share_bps: 5_000 })).toMatchObject({
      status: 200,
      body: { status: 'split', released_to_counterparty: 1.98, commission: 0.02, refunded_to_creator: 2 },
    });
    expect(await balance(creator)).toMatchObject({ balance_usd: 8, held_usd: 0 });
    expect(await balance(worker)).toMatchObject({ balance_usd: 1.98 });
  });

  it('meets a deadline within 2 s: an untouched escrow is refunded at auto_release_at', async () => {
    const { creator, worker } = await funded();
    const escrowId = (
      await createEscrow(creator, { amount_usd: 1, counterparty_agent_id: worker.id, timeout_hours: 0.0005 })
    ).body.escrow_id as string;
    const refunded = await waitFor(
      'refund',
      async () => {
        const { body } = await request('GET', `/escrow/${escrowId}`);
        return body.status === 'refunded' ? body : undefined;
      },
      { timeoutMs: 8_000, intervalMs: 100 },
    );
    expect(
      Date.parse(refunded.refunded_at as string) - Date.parse(refunded.auto_release_at as string),
    ).toBeLessThan(2_000);
    await waitFor('money back', async () => (await balance(creator)).held_usd === 0);
    expect(await balance(creator)).toMatchObject({ balance_usd: 10 });
  });

  it('creates once per Idempotency-Key; a release with an empty JSON body works', async () => {
    const { creator, worker } = await funded();
    const headers = { 'idempotency-key': 'job-42' };
    const first = await createEscrow(creator, { amount_usd: 3, counterparty_agent_id: worker.id }, headers);
    const again = await createEscrow(creator, { amount_usd: 3, counterparty_agent_id: worker.id }, headers);
    expect(again).toEqual(first);
    expect(await balance(creator)).toMatchObject({ balance_usd: 7, held_usd: 3 });
    const response = await fetch(`${system.gatewayUrl}/escrow/release/${first.body.escrow_id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '0', ...auth(creator) },
    });
    expect(response.status).toBe(200);
    const client = new CommandClient({ connection: nats, prefix: subjects, timeoutMs: 30_000 });
    const check = await client.request<LedgerCheckReport>(casinoCommands.checkLedger, {});
    expect(check.violations).toEqual([]);
  });
});
