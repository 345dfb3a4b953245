import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { SubjectPrefix, type EventEnvelope } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  deletePrefixedStreams,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent, type Answer } from './api-client.js';

const ADMIN_API_KEY = 'pay-e2e-admin-key-0123456789';

/**
 * Direct payments (issue #22, ADR 0019): one ledger transfer between agents, idempotent, no
 * commission, never an overdraft — also when one account pays many times at once through two
 * casino replicas — and the books always sum to what was deposited.
 */
describe('direct payments (POST /api/v1/pay)', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let replica: ServiceProcess;
  let nats: NatsConnection;
  let api: ApiClient;
  const prefix = testNatsPrefix();
  const subjects = new SubjectPrefix(prefix);

  const pay = (payer: Agent, body: Record<string, unknown>, idempotencyKey = randomUUID()): Promise<Answer> =>
    api.call('POST', '/api/v1/pay', {
      key: payer.apiKey,
      body,
      headers: { 'idempotency-key': idempotencyKey },
    });
  const funded = async (amountUsd: number): Promise<Agent> => {
    const agent = await api.register();
    if (amountUsd > 0) await api.credit(ADMIN_API_KEY, agent.agentId, amountUsd);
    return agent;
  };
  const totalUsd = async (agents: readonly Agent[]) => {
    const balances = await Promise.all(agents.map((agent) => api.balanceUsd(agent.apiKey)));
    return Math.round(balances.reduce((sum, value) => sum + value, 0) * 1e6) / 1e6;
  };

  beforeAll(async () => {
    database = await createTestDatabase('pay');
    const env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
    };
    system = await startSystem(env, ['casino', 'gateway']);
    replica = await spawnService('casino', { env });
    await replica.waitUntilReady();
    api = new ApiClient(system.gatewayUrl);
    nats = await connectTestNats();
  }, 90_000);

  afterAll(async () => {
    await replica?.stop();
    await system?.stop();
    if (nats) {
      await deletePrefixedStreams(nats, prefix).catch(() => undefined);
      await nats.close();
    }
    await database?.drop();
  });

  it('moves the amount from payer to payee with no commission, and publishes a receipt-friendly event', async () => {
    const manager = await jetstreamManager(nats);
    const stream = subjects.streamName('CASINO_EVENTS');
    await manager.consumers.add(stream, {
      durable_name: 'pay-e2e',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: subjects.subject('casino.events.funds_transferred'),
    });
    const [alice, bob] = [await funded(10), await funded(0)];
    const answer = await pay(alice, { to_agent_id: bob.agentId, amount_usd: '2.5', memo: 'API credits' });
    expect(answer).toMatchObject({
      status: 201,
      body: {
        payment_id: expect.stringMatching(/^pay_[0-9a-f]{16}$/),
        status: 'completed',
        from_agent_id: alice.agentId,
        to_agent_id: bob.agentId,
        amount_usd: 2.5,
        fee_usd: 0,
        memo: 'API credits',
        key_id: null,
        paid_at: expect.any(String),
        balance_usd: 7.5,
      },
    });
    expect(await api.balanceUsd(alice.apiKey)).toBe(7.5);
    expect(await api.balanceUsd(bob.apiKey)).toBe(2.5);
    const paymentId = answer.body.payment_id as string;

    const consumer = await jetstream(nats).consumers.get(stream, 'pay-e2e');
    let event: EventEnvelope | undefined;
    await waitFor(
      'the payment event',
      async () => {
        const batch = await consumer.fetch({ max_messages: 50, expires: 1_000 });
        for await (const message of batch) {
          const envelope = message.json<EventEnvelope>();
          if (envelope.stream === `op-${paymentId}`) event = envelope;
          message.ack();
        }
        return event !== undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(event).toMatchObject({
      type: 'funds_transferred',
      occurred_at: expect.any(String),
      data: {
        transferId: paymentId,
        from: alice.agentId,
        to: bob.agentId,
        amountMicros: '2500000',
        reason: 'payment',
      },
    });
    await manager.consumers.delete(stream, 'pay-e2e');

    // The public service's path does the same.
    expect(
      (
        await api.call('POST', '/api/v1/stats/pay', {
          key: alice.apiKey,
          body: { to_agent_id: bob.agentId, amount_usd: 0.5 },
        })
      ).status,
    ).toBe(201);
    expect(await api.balanceUsd(bob.apiKey)).toBe(3);
  });

  it('is idempotent on the Idempotency-Key: a retry pays once and answers the same payment', async () => {
    const [alice, bob] = [await funded(5), await funded(0)];
    const key = randomUUID();
    const first = await pay(alice, { to_agent_id: bob.agentId, amount_usd: 1 }, key);
    const again = await pay(alice, { to_agent_id: bob.agentId, amount_usd: 1 }, key);
    expect(first.status).toBe(201);
    expect(again.body.payment_id).toBe(first.body.payment_id);
    expect(await api.balanceUsd(bob.apiKey)).toBe(1);
    expect((await pay(alice, { to_agent_id: bob.agentId, amount_usd: 2 }, key)).body.error).toBe(
      'idempotency_key_reused',
    );
    expect(await api.balanceUsd(alice.apiKey)).toBe(4);
  });

  it('refuses bad payments with a code and writes nothing', async () => {
    const [alice, bob] = [await funded(3), await funded(0)];
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ to_agent_id: bob.agentId, amount_usd: 5 }, 402, 'insufficient_balance'],
      [{ to_agent_id: 'ag_000000000000', amount_usd: 1 }, 404, 'payee_not_found'],
      [{ to_agent_id: alice.agentId, amount_usd: 1 }, 400, 'self_payment'],
      [{ to_agent_id: 'bob', amount_usd: 1 }, 400, 'invalid_payee'],
      [{ amount_usd: 1 }, 400, 'invalid_payee'],
      [{ to_agent_id: bob.agentId, amount_usd: 0 }, 400, 'invalid_amount'],
      [{ to_agent_id: bob.agentId, amount_usd: -1 }, 400, 'invalid_amount'],
      [{ to_agent_id: bob.agentId, amount_usd: 0.0000001 }, 400, 'invalid_amount'],
      [{ to_agent_id: bob.agentId, amount_usd: 'lots' }, 400, 'invalid_amount'],
      [{ to_agent_id: bob.agentId, amount_usd: 1, memo: 'x'.repeat(501) }, 400, 'invalid_memo'],
      [{ to_agent_id: bob.agentId, amount_usd: 1, memo: 42 }, 400, 'invalid_memo'],
    ];
    for (const [body, status, error] of cases) {
      const answer = await pay(alice, body);
      expect({ body, status: answer.status, error: answer.body.error }).toEqual({ body, status, error });
    }
    expect(await pay(alice, { to_agent_id: bob.agentId, amount_usd: 5 })).toMatchObject({
      body: { balance_usd: 3 },
    });
    expect((await api.post('/api/v1/pay', { to_agent_id: bob.agentId, amount_usd: 1 })).status).toBe(401);
    expect(await api.balanceUsd(alice.apiKey)).toBe(3);
    expect(await api.balanceUsd(bob.apiKey)).toBe(0);
    const ledger = await api.get('/api/v1/auth/ledger', alice.apiKey);
    expect((ledger.body.entries as unknown[]).length).toBe(1);
  });

  it('never overdraws: 20 concurrent $1 payments from a $5 account pay exactly 5', async () => {
    const payer = await funded(5);
    const payees = await Promise.all(Array.from({ length: 4 }, () => funded(0)));
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        pay(payer, { to_agent_id: payees[index % 4]!.agentId, amount_usd: 1 }),
      ),
    );
    expect(answers.filter((answer) => answer.status === 201).length).toBe(5);
    for (const answer of answers.filter((entry) => entry.status !== 201))
      expect(answer).toMatchObject({ status: 402, body: { error: 'insufficient_balance' } });
    expect(await api.balanceUsd(payer.apiKey)).toBe(0);
    expect(await totalUsd([payer, ...payees])).toBe(5);
  });

  it('conserves money: many concurrent payments in every direction leave the sum unchanged', async () => {
    const agents = await Promise.all([10, 10, 10, 10, 10].map((amount) => funded(amount)));
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, index) => {
        const from = agents[index % 5]!;
        const to = agents[(index * 3 + 1) % 5]!;
        return from === to
          ? Promise.resolve({ status: 400 } as Answer)
          : pay(from, { to_agent_id: to.agentId, amount_usd: 0.5 + (index % 7) * 0.75 });
      }),
    );
    expect(answers.some((answer) => answer.status === 201)).toBe(true);
    for (const answer of answers) expect([201, 400, 402]).toContain(answer.status);
    expect(await totalUsd(agents)).toBe(50);
    for (const agent of agents) expect(await api.balanceUsd(agent.apiKey)).toBeGreaterThanOrEqual(0);
    const check = await api.get('/admin/ledger/check', ADMIN_API_KEY);
    expect(check.body).toMatchObject({ ok: true, violations: [] });
  });
});
