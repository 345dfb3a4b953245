import fc from 'fast-check';
import { given } from '@pf/testing';
import { claimDecider, type ClaimCommand, type ClaimEvent, type ClaimState } from './claim.js';

const agent = 'ag_00000000000a';
const claimId = '11111111-1111-4111-8111-111111111111';
const otherClaimId = '22222222-2222-4222-8222-222222222222';
const oneUsd = 1_000_000n;
const t0 = Date.parse('2026-01-01T00:00:00.000Z');
const leaseMs = 15_000;

/** The decider with the context the service loads under the treasury lock. */
function withContext(context: Partial<Pick<ClaimState, 'hasDeposits' | 'remainingBudgetMicros'>> = {}) {
  return {
    ...claimDecider,
    initialState: (): ClaimState => ({
      claim: { status: 'eligible' },
      hasDeposits: false,
      remainingBudgetMicros: 10n * oneUsd,
      ...context,
    }),
  };
}

const request = (nowMs = t0, id = claimId): ClaimCommand => ({
  kind: 'request',
  claimId: id,
  agentId: agent,
  amountMicros: oneUsd,
  nowMs,
  leaseMs,
});
const requested: ClaimEvent = {
  type: 'claim_requested',
  claimId,
  agentId: agent,
  amountMicros: oneUsd,
  requestedAt: new Date(t0).toISOString(),
};
const claimed = (inFirstRequest: boolean): ClaimEvent => ({
  type: 'claimed',
  claimId,
  agentId: agent,
  amountMicros: oneUsd,
  claimedAt: new Date(t0 + 10).toISOString(),
  inFirstRequest,
});
const failed: ClaimEvent = {
  type: 'claim_transfer_failed',
  claimId,
  agentId: agent,
  code: 'service_unavailable',
  failedAt: new Date(t0 + 10).toISOString(),
};
const rejected: ClaimEvent = {
  type: 'claim_rejected',
  claimId,
  agentId: agent,
  amountMicros: oneUsd,
  code: 'faucet_empty',
  rejectedAt: new Date(t0 + 10).toISOString(),
};

describe('claim decider: requesting', () => {
  it('records the intent of an eligible agent', () => {
    given(withContext(), []).when(request()).then([requested]);
  });

  it('checks in API order: already claimed, then deposits, then budget', () => {
    given(withContext({ hasDeposits: true, remainingBudgetMicros: 0n }), [requested, claimed(true)])
      .when(request(t0 + 60_000, otherClaimId))
      .thenThrows('already_claimed');
    given(withContext({ hasDeposits: true, remainingBudgetMicros: 0n }), [])
      .when(request())
      .thenThrows('has_deposits');
    given(withContext({ remainingBudgetMicros: oneUsd - 1n }), [])
      .when(request())
      .thenThrows('faucet_empty');
    given(withContext({ remainingBudgetMicros: oneUsd }), [])
      .when(request())
      .then([requested]);
  });

  it('refuses a second claim while the first is being paid out (the lease is held)', () => {
    given(withContext(), [requested])
      .when(request(t0 + leaseMs - 1, otherClaimId))
      .thenThrows('already_claimed');
  });

  it('resumes a pending claim once its transfer failed, or once the lease ran out: nothing new is recorded', () => {
    given(withContext(), [requested, failed])
      .when(request(t0 + 20, otherClaimId))
      .then([]);
    given(withContext(), [requested])
      .when(request(t0 + leaseMs, otherClaimId))
      .then([]);
  });

  it('does not refuse a pending claim for a deposit made after it was recorded', () => {
    given(withContext({ hasDeposits: true }), [requested, failed])
      .when(request(t0 + 20, otherClaimId))
      .then([]);
  });

  it('replays a completed claim whose first request did not deliver it; refuses one that did', () => {
    given(withContext(), [requested, failed, claimed(false)])
      .when(request(t0 + 60_000, otherClaimId))
      .then([]);
    given(withContext(), [requested, claimed(true)])
      .when(request(t0 + 60_000, otherClaimId))
      .thenThrows('already_claimed');
  });

  it('makes the agent eligible again after a rejection (no money moved)', () => {
    const again: ClaimEvent = {
      ...requested,
      claimId: otherClaimId,
      requestedAt: new Date(t0 + 60_000).toISOString(),
    };
    given(withContext(), [requested, rejected])
      .when(request(t0 + 60_000, otherClaimId))
      .then([again]);
  });
});

describe('claim decider: outcomes', () => {
  it('completes a pending claim once, and the same completion again is a no-op', () => {
    given(withContext(), [requested])
      .when({ kind: 'complete', claimId, inFirstRequest: true, nowMs: t0 + 10 })
      .then([claimed(true)]);
    given(withContext(), [requested, claimed(true)])
      .when({ kind: 'complete', claimId, inFirstRequest: false, nowMs: t0 + 20 })
      .then([]);
  });

  it('never completes a claim that is not pending', () => {
    given(withContext(), [])
      .when({ kind: 'complete', claimId, inFirstRequest: true, nowMs: t0 })
      .thenThrows('claim_not_pending');
    given(withContext(), [requested, rejected])
      .when({ kind: 'complete', claimId, inFirstRequest: false, nowMs: t0 })
      .thenThrows('claim_not_pending');
    given(withContext(), [requested])
      .when({ kind: 'complete', claimId: otherClaimId, inFirstRequest: true, nowMs: t0 })
      .thenThrows('claim_not_pending');
  });

  it('marks a failed transfer once, and records nothing for a claim that is not pending', () => {
    const fail: ClaimCommand = {
      kind: 'fail_transfer',
      claimId,
      code: 'service_unavailable',
      nowMs: t0 + 10,
    };
    given(withContext(), [requested]).when(fail).then([failed]);
    given(withContext(), [requested, failed]).when(fail).then([]);
    given(withContext(), [requested, claimed(true)])
      .when(fail)
      .then([]);
  });

  it('rejects a pending claim, releasing its reservation', () => {
    const [event] = given(withContext({ remainingBudgetMicros: 0n }), [requested])
      .when({ kind: 'reject', claimId, nowMs: t0 + 10 })
      .then([rejected]);
    const state = [requested, event!].reduce(
      claimDecider.evolve,
      withContext({ remainingBudgetMicros: oneUsd }).initialState(),
    );
    expect(state).toMatchObject({ claim: { status: 'eligible' }, remainingBudgetMicros: oneUsd });
  });

  it('treats a rejection after payment as a broken invariant', () => {
    expect(() =>
      claimDecider.decide(
        { kind: 'reject', claimId, nowMs: t0 },
        [requested, claimed(true)].reduce(claimDecider.evolve, withContext().initialState()),
      ),
    ).toThrow(/after paying it/);
  });
});

describe('claim decider: invariants under random command sequences', () => {
  const command: fc.Arbitrary<ClaimCommand> = fc.oneof(
    fc.record({
      kind: fc.constant('request' as const),
      claimId: fc.constantFrom(claimId, otherClaimId),
      agentId: fc.constant(agent),
      amountMicros: fc.constant(oneUsd),
      nowMs: fc.integer({ min: t0, max: t0 + 60_000 }),
      leaseMs: fc.constant(leaseMs),
    }),
    fc.record({
      kind: fc.constant('complete' as const),
      claimId: fc.constantFrom(claimId, otherClaimId),
      inFirstRequest: fc.boolean(),
      nowMs: fc.constant(t0),
    }),
    fc.record({
      kind: fc.constant('fail_transfer' as const),
      claimId: fc.constantFrom(claimId, otherClaimId),
      code: fc.constant('service_unavailable'),
      nowMs: fc.constant(t0),
    }),
    fc.record({
      kind: fc.constant('reject' as const),
      claimId: fc.constantFrom(claimId, otherClaimId),
      nowMs: fc.constant(t0),
    }),
  );

  it('at most one claim is ever completed per agent, and the budget never goes negative', () => {
    fc.assert(
      fc.property(
        fc.array(command, { maxLength: 40 }),
        fc.bigInt({ min: 0n, max: 3n * oneUsd }),
        (commands, budgetMicros) => {
          let state = withContext({ remainingBudgetMicros: budgetMicros }).initialState();
          let completions = 0;
          for (const cmd of commands) {
            let events: ClaimEvent[] = [];
            try {
              events = claimDecider.decide(cmd, state);
            } catch (error) {
              expect((error as { code?: string }).code ?? (error as Error).message).toEqual(
                expect.any(String),
              );
              continue;
            }
            completions += events.filter((event) => event.type === 'claimed').length;
            state = events.reduce(claimDecider.evolve, state);
            expect(state.remainingBudgetMicros >= 0n).toBe(true);
          }
          expect(completions).toBeLessThanOrEqual(1);
          const reserved = state.claim.status === 'eligible' ? 0n : state.claim.claim.amountMicros;
          expect(state.remainingBudgetMicros).toBe(budgetMicros - reserved);
        },
      ),
      { numRuns: 500 },
    );
  });
});
