import { createPublicKey, randomBytes, randomUUID, verify } from 'node:crypto';
import {
  createTestDatabase,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'receipts-e2e-admin-key-0123456789';

interface ReceiptAnswer {
  receipt_id: string;
  receipt: Record<string, string | null>;
  signature: string;
  signature_algorithm: string;
  key_id: string;
  canonical: string;
}
interface KeysAnswer {
  current_key_id: string;
  keys: Array<{ key_id: string; public_key: string; public_key_pem: string; status: string }>;
}

/**
 * The verifier a third party would write, from docs/API.md alone: canonical JSON (keys sorted,
 * no whitespace, UTF-8) of `receipt`, Ed25519 with the published public key of `key_id`. It does
 * not use the service's code, nor the `canonical` field the answer carries.
 */
function verifiesOffline(answer: Pick<ReceiptAnswer, 'receipt' | 'signature'>, keys: KeysAnswer): boolean {
  const canonical = (value: unknown): string =>
    value !== null && typeof value === 'object'
      ? `{${Object.keys(value)
          .sort()
          .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
          .join(',')}}`
      : JSON.stringify(value);
  const key = keys.keys.find((candidate) => candidate.key_id === answer.receipt.key_id);
  if (!key) return false;
  // The raw 32-byte key as a JWK: no PEM handling needed by the verifier.
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key.public_key, 'base64').toString('base64url') },
    format: 'jwk',
  });
  return verify(
    null,
    Buffer.from(canonical(answer.receipt), 'utf8'),
    publicKey,
    Buffer.from(answer.signature, 'base64'),
  );
}

/**
 * Signed receipts end to end (ADR 0020): every settlement gets a receipt signed with the
 * configured Ed25519 key; it verifies with only the published public key, a changed fact does
 * not, and after a key rotation old receipts still verify and new ones use the new key.
 */
describe('signed receipts', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let rotated: ServiceProcess | undefined;
  let api: ApiClient;
  const keyA = randomBytes(32).toString('base64');
  const keyB = randomBytes(32).toString('base64');
  let env: Record<string, string>;

  const receiptsOf = (settlementId: string, agent: Agent) =>
    api.get<{ receipts: ReceiptAnswer[] }>(`/receipts?settlement_id=${settlementId}`, agent.apiKey);
  const waitForReceipt = async (settlementId: string, agent: Agent): Promise<ReceiptAnswer> => {
    let found: ReceiptAnswer | undefined;
    await waitFor(
      `a receipt for ${settlementId}`,
      async () => {
        found = (await receiptsOf(settlementId, agent)).body.receipts?.[0];
        return found !== undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    return found!;
  };
  const keys = async () => (await api.get<KeysAnswer>('/.well-known/receipts-key')).body;
  async function escrow(creator: Agent, worker: Agent, amountUsd: number): Promise<string> {
    const created = await api.post<{ escrow_id: string }>(
      '/escrow/create',
      { amount_usd: amountUsd, description: 'Label 100 images', counterparty_agent_id: worker.agentId },
      creator.apiKey,
    );
    expect(created.status).toBe(201);
    return created.body.escrow_id;
  }

  beforeAll(async () => {
    database = await createTestDatabase('receiptse2e');
    env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: testNatsPrefix(),
      ADMIN_API_KEY,
      RATE_LIMIT_PER_IP_PER_MINUTE: '0',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
      FAUCET_IP_LIMIT_PER_DAY: '0',
    };
    system = await startSystem(env, undefined, { perApp: { gateway: { RECEIPT_SIGNING_KEY: keyA } } });
    api = new ApiClient(system.gatewayUrl);
  }, 90_000);

  afterAll(async () => {
    await rotated?.stop();
    await system?.stop();
    await database?.drop();
  });

  let released: ReceiptAnswer;
  let creator: Agent;
  let worker: Agent;

  it('a release has a receipt with its facts that verifies with only the public key; a changed fact does not', async () => {
    [creator, worker] = await Promise.all([api.register(), api.register()]);
    await api.credit(ADMIN_API_KEY, creator.agentId, 20);
    const escrowId = await escrow(creator, worker, 5);
    expect((await api.post(`/escrow/complete/${escrowId}`, {}, worker.apiKey)).status).toBe(200);
    expect((await api.post(`/escrow/release/${escrowId}`, {}, creator.apiKey)).status).toBe(200);

    released = await waitForReceipt(escrowId, creator);
    expect(released.receipt).toMatchObject({
      format: 'pf-receipt-v1',
      kind: 'escrow_release',
      settlement_id: escrowId,
      payer_id: creator.agentId,
      payee_id: worker.agentId,
      amount_micros: '5000000',
      paid_to_payee_micros: '4950000',
      commission_micros: '50000',
      event_type: 'released',
      event_service: 'escrow',
      receipt_id: released.receipt_id,
    });
    expect(released.receipt.event_position).toMatch(/^[1-9][0-9]*$/);
    const published = await keys();
    expect(published.current_key_id).toBe(released.key_id);
    expect(verifiesOffline(released, published)).toBe(true);
    expect(
      verifiesOffline({ ...released, receipt: { ...released.receipt, amount_micros: '5000001' } }, published),
    ).toBe(false);
    expect(
      verifiesOffline(
        { ...released, receipt: { ...released.receipt, payee_id: creator.agentId } },
        published,
      ),
    ).toBe(false);

    // Anyone holding the id reads it (to show a third party); the parties list theirs, others see none.
    const byId = await api.get<ReceiptAnswer>(`/receipts/${released.receipt_id}`);
    expect(byId.status).toBe(200);
    expect(byId.body.signature).toBe(released.signature);
    expect((await receiptsOf(escrowId, worker)).body.receipts).toHaveLength(1);
    const outsider = await api.register();
    expect((await receiptsOf(escrowId, outsider)).body.receipts).toEqual([]);
    expect((await api.get('/receipts?settlement_id=' + escrowId)).status).toBe(401);
    const unknown = await api.get(`/receipts/rcpt_${'0'.repeat(32)}`);
    expect([unknown.status, unknown.body.error]).toEqual([404, 'receipt_not_found']);
    const malformed = await api.get('/receipts/rcpt_nope');
    expect([malformed.status, malformed.body.error]).toEqual([400, 'invalid_request']);
  });

  it('a faucet claim has a receipt: the treasury paid the agent', async () => {
    const claimer = await api.register();
    const claim = await api.post<{ claim_id: string }>('/faucet/claim', { agent_casino_id: claimer.agentId });
    expect(claim.status).toBe(200);
    const receipt = await waitForReceipt(claim.body.claim_id, claimer);
    expect(receipt.receipt).toMatchObject({
      kind: 'faucet_claim',
      payer_id: 'faucet_treasury',
      payee_id: claimer.agentId,
      amount_micros: '1000000',
    });
    expect(verifiesOffline(receipt, await keys())).toBe(true);
  });

  it('a direct payment has a receipt: payer to payee, no commission; both parties list it', async () => {
    const paid = await api.call<{ payment_id: string }>('POST', '/api/v1/pay', {
      key: creator.apiKey,
      body: { to_agent_id: worker.agentId, amount_usd: 2.5 },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(paid.status).toBe(201);
    const receipt = await waitForReceipt(paid.body.payment_id, creator);
    expect(receipt.receipt).toMatchObject({
      kind: 'payment',
      settlement_id: paid.body.payment_id,
      payer_id: creator.agentId,
      payee_id: worker.agentId,
      amount_micros: '2500000',
      paid_to_payee_micros: '2500000',
      commission_micros: '0',
      event_service: 'casino',
      event_type: 'funds_transferred',
    });
    expect((await receiptsOf(paid.body.payment_id, worker)).body.receipts).toHaveLength(1);
    expect(verifiesOffline(receipt, await keys())).toBe(true);
  });

  it('after a key rotation the old receipt still verifies (retired key published) and new ones use the new key', async () => {
    await system.services.gateway.stop();
    rotated = await spawnService('gateway', { env: { ...env, RECEIPT_SIGNING_KEY: keyB } });
    await rotated.waitUntilReady();
    api = new ApiClient(rotated.url);

    const published = await keys();
    expect(published.current_key_id).not.toBe(released.key_id);
    expect(published.keys.find((key) => key.key_id === released.key_id)?.status).toBe('retired');
    const again = (await api.get<ReceiptAnswer>(`/receipts/${released.receipt_id}`)).body;
    expect(again.key_id).toBe(released.key_id);
    expect(verifiesOffline(again, published)).toBe(true);

    const escrowId = await escrow(creator, worker, 2);
    expect((await api.post(`/escrow/decline/${escrowId}`, {}, worker.apiKey)).status).toBe(200);
    const refund = await waitForReceipt(escrowId, creator);
    expect(refund.receipt).toMatchObject({
      kind: 'escrow_refund',
      returned_to_payer_micros: '2000000',
      commission_micros: '0',
    });
    expect(refund.key_id).toBe(published.current_key_id);
    expect(verifiesOffline(refund, await keys())).toBe(true);
  }, 60_000);
});
