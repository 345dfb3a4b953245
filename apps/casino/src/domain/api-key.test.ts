import { given } from '@pf/testing';
import { apiKeyDecider, type KeyCommand, type KeyEvent, type Mandate } from './api-key.js';

const alice = 'ag_00000000000a';
const bob = 'ag_00000000000b';
const carol = 'ag_00000000000c';
const keyId = 'key_00000000000000aa';
const hash = 'ab'.repeat(32);
const usd = (amount: number) => BigInt(Math.round(amount * 1_000_000));
const nowMs = Date.parse('2026-01-01T00:00:00Z');
const hourMs = 3_600_000;

const mandate = (overrides: Partial<Mandate> = {}): Mandate => ({
  maxPerTransactionMicros: usd(2),
  maxPerDayMicros: usd(10),
  allowedPayees: null,
  allowedActions: null,
  expiresAtMs: nowMs + 24 * hourMs,
  ...overrides,
});

const created = (overrides: Partial<Mandate> = {}): KeyEvent => ({
  type: 'api_key_created',
  keyId,
  agentId: alice,
  apiKeyHashHex: hash,
  name: 'shopper',
  mandate: mandate(overrides),
});

const create = (overrides: Partial<Mandate> = {}, agentId = alice): KeyCommand => ({
  kind: 'create',
  keyId,
  agentId,
  apiKeyHashHex: hash,
  name: 'shopper',
  mandate: mandate(overrides),
  nowMs,
});

const spend = (
  amount: number,
  fields: Partial<Extract<KeyCommand, { kind: 'spend' }>> = {},
): Extract<KeyCommand, { kind: 'spend' }> => ({
  kind: 'spend',
  keyId,
  agentId: alice,
  operationId: 'pay_0000000000000001',
  action: 'pay',
  payeeId: bob,
  amountMicros: usd(amount),
  nowMs,
  spentInWindowMicros: 0n,
  ...fields,
});

const spent = (amount: number): KeyEvent => ({
  type: 'key_spent',
  keyId,
  agentId: alice,
  operationId: 'pay_0000000000000001',
  action: 'pay',
  payeeId: bob,
  amountMicros: usd(amount),
});

describe('api key decider: create and revoke', () => {
  it('creates a key with its mandate', () => {
    given(apiKeyDecider, []).when(create()).then([created()]);
  });

  it('answers a retry of the same create with nothing new, and refuses a taken id', () => {
    given(apiKeyDecider, [created()]).when(create()).then([]);
    given(apiKeyDecider, [created()]).when(create({}, bob)).thenThrows('version_conflict');
  });

  it.each([
    ['a zero limit', { maxPerTransactionMicros: 0n }],
    ['a per-transaction limit above the day', { maxPerTransactionMicros: usd(11) }],
    ['an expiry in the past', { expiresAtMs: nowMs - 1 }],
    ['an expiry more than a year away', { expiresAtMs: nowMs + 367 * 24 * hourMs }],
    ['the agent itself as payee', { allowedPayees: [alice] }],
    ['an empty action list', { allowedActions: [] }],
  ])('refuses %s', (_name, overrides) => {
    given(apiKeyDecider, []).when(create(overrides)).thenThrows('invalid_mandate');
  });

  it('revokes once; a second revoke changes nothing', () => {
    given(apiKeyDecider, [created()])
      .when({ kind: 'revoke', keyId, agentId: alice })
      .then([{ type: 'api_key_revoked', keyId, agentId: alice }]);
    given(apiKeyDecider, [created(), { type: 'api_key_revoked', keyId, agentId: alice }])
      .when({ kind: 'revoke', keyId, agentId: alice })
      .then([]);
  });

  it("answers another agent's key and an unknown key as not found", () => {
    given(apiKeyDecider, [created()])
      .when({ kind: 'revoke', keyId, agentId: bob })
      .thenThrows('key_not_found');
    given(apiKeyDecider, []).when({ kind: 'revoke', keyId, agentId: alice }).thenThrows('key_not_found');
  });
});

describe('api key decider: spending under a mandate', () => {
  it('records a spend within every limit', () => {
    given(apiKeyDecider, [created()])
      .when(spend(2))
      .then([spent(2)]);
  });

  it('refuses more than the per-transaction limit', () => {
    given(apiKeyDecider, [created()]).when(spend(2.000001)).thenThrows('mandate_exceeded');
  });

  it('refuses what would take the rolling day over its limit, and says what remains', () => {
    const run = () =>
      apiKeyDecider.decide(
        spend(2, { spentInWindowMicros: usd(8.5) }),
        apiKeyDecider.evolve(apiKeyDecider.initialState(), created()),
      );
    expect(run).toThrow(
      expect.objectContaining({
        code: 'mandate_exceeded',
        details: { limit: 'per_day', limit_micros: '10000000', remaining_micros: '1500000' },
      }),
    );
    given(apiKeyDecider, [created()])
      .when(spend(1.5, { spentInWindowMicros: usd(8.5) }))
      .then([spent(1.5)]);
  });

  it('refuses payees outside allowed_payees and actions outside allowed_actions', () => {
    given(apiKeyDecider, [created({ allowedPayees: [carol] })])
      .when(spend(1))
      .thenThrows('mandate_payee_not_allowed');
    given(apiKeyDecider, [created({ allowedPayees: [carol] })])
      .when(spend(1, { payeeId: carol }))
      .then([{ ...spent(1), payeeId: carol } as KeyEvent]);
    given(apiKeyDecider, [created({ allowedActions: ['escrow_create'] })])
      .when(spend(1))
      .thenThrows('mandate_action_not_allowed');
  });

  it('refuses a revoked key, an expired key, and a key of another agent', () => {
    given(apiKeyDecider, [created(), { type: 'api_key_revoked', keyId, agentId: alice }])
      .when(spend(1))
      .thenThrows('key_revoked');
    given(apiKeyDecider, [created()])
      .when(spend(1, { nowMs: nowMs + 24 * hourMs }))
      .thenThrows('key_expired');
    given(apiKeyDecider, [created()])
      .when(spend(1, { agentId: bob }))
      .thenThrows('forbidden');
  });

  it('never lets the window total pass the day limit (every sequence of spends)', () => {
    const state = apiKeyDecider.evolve(apiKeyDecider.initialState(), created());
    let spentMicros = 0n;
    for (const amount of [1, 2, 0.5, 2, 2, 2, 1, 0.25, 2, 0.25, 1]) {
      try {
        const [event] = apiKeyDecider.decide(spend(amount, { spentInWindowMicros: spentMicros }), state);
        spentMicros += (event as Extract<KeyEvent, { type: 'key_spent' }>).amountMicros;
      } catch (error) {
        expect((error as { code: string }).code).toBe('mandate_exceeded');
      }
      expect(spentMicros <= usd(10)).toBe(true);
    }
    expect(spentMicros).toBe(usd(10));
  });
});
