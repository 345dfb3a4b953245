import { DomainError, faucetErrors } from '@pf/contracts';
import type { Decider } from '@pf/contracts';

/**
 * The claim decider. One stream per agent (`claim-<agentId>`), so "one claim per agent, ever"
 * is the stream's expected version: two concurrent requests cannot both record a claim.
 *
 * A claim is recorded first (`claim_requested`, the intent, reserving the amount of the
 * budget), then the money moves by an idempotent ledger transfer whose id is the claim id,
 * then `claimed` records the outcome. If the ledger does not answer, the claim stays pending
 * (`claim_transfer_failed` marks it as free to retry) and a retry by the agent or the
 * recovery sweep re-sends the same transfer. If the ledger refuses (treasury empty), the
 * claim is rejected, its reservation released, and the agent may claim again later.
 */

export interface Claim {
  /** A UUID; also the ledger transfer id. */
  claimId: string;
  agentId: string;
  amountMicros: bigint;
  requestedAtMs: number;
}

export type ClaimCommand =
  | {
      kind: 'request';
      /** Used only if a new claim is recorded. */
      claimId: string;
      agentId: string;
      amountMicros: bigint;
      nowMs: number;
      /** How long a pending claim belongs to the request that is paying it out. */
      leaseMs: number;
    }
  | { kind: 'complete'; claimId: string; inFirstRequest: boolean; nowMs: number }
  | { kind: 'fail_transfer'; claimId: string; code: string; nowMs: number }
  | { kind: 'reject'; claimId: string; nowMs: number };

export type ClaimEvent =
  | { type: 'claim_requested'; claimId: string; agentId: string; amountMicros: bigint; requestedAt: string }
  | {
      type: 'claimed';
      claimId: string;
      agentId: string;
      amountMicros: bigint;
      claimedAt: string;
      /** True when the request that recorded the claim also delivered its 200 to the agent. */
      inFirstRequest: boolean;
    }
  | { type: 'claim_transfer_failed'; claimId: string; agentId: string; code: string; failedAt: string }
  | {
      type: 'claim_rejected';
      claimId: string;
      agentId: string;
      amountMicros: bigint;
      code: 'faucet_empty';
      rejectedAt: string;
    };

export type ClaimStatus =
  | { status: 'eligible' }
  /** `stalled`: the last transfer attempt failed, so no request is paying it out now. */
  | { status: 'pending'; claim: Claim; stalled: boolean }
  | { status: 'completed'; claim: Claim; claimedAtMs: number; inFirstRequest: boolean };

export interface ClaimState {
  claim: ClaimStatus;
  /** The agent made a deposit (learned from casino's events): not eligible. */
  hasDeposits: boolean;
  /** Funded budget minus every claim pending or completed (the caller loads it, locked). */
  remainingBudgetMicros: bigint;
}

/** Internal codes: a caller bug or a broken invariant, never an answer to an agent. */
export const ClaimError = {
  notPending: 'claim_not_pending',
} as const;

export const claimDecider: Decider<ClaimCommand, ClaimEvent, ClaimState> = {
  initialState: () => ({ claim: { status: 'eligible' }, hasDeposits: false, remainingBudgetMicros: 0n }),
  decide: (command, state) => {
    const events = decideCommand(command, state);
    const after = events.reduce(evolve, state);
    if (after.remainingBudgetMicros < 0n) throw new Error('claim decider: the budget would go below zero');
    return events;
  },
  evolve: (state, event) => evolve(state, event),
};

function decideCommand(command: ClaimCommand, state: ClaimState): ClaimEvent[] {
  switch (command.kind) {
    case 'request':
      return decideRequest(command, state);
    case 'complete':
      return decideComplete(command, state.claim);
    case 'fail_transfer':
      return decideFailure(command, state.claim);
    case 'reject':
      return decideReject(command, state.claim);
  }
}

/**
 * API.md's order: already claimed (409) before has deposits (403) before faucet empty (503).
 * A pending claim is never refused for a deposit made after it was recorded.
 */
function decideRequest(command: Extract<ClaimCommand, { kind: 'request' }>, state: ClaimState): ClaimEvent[] {
  const current = state.claim;
  if (current.status !== 'eligible' && current.claim.agentId !== command.agentId) {
    throw new Error(`claim decider: stream of ${current.claim.agentId} asked for ${command.agentId}`);
  }
  switch (current.status) {
    case 'completed':
      // The agent already saw this claim's 200: a new claim is refused. Otherwise (its first
      // request answered 503) the outcome is replayed: nothing new happens.
      if (current.inFirstRequest)
        throw alreadyClaimed(current.claim, 'this agent has already claimed from the faucet');
      return [];
    case 'pending': {
      const leaseHeld = !current.stalled && command.nowMs - current.claim.requestedAtMs < command.leaseMs;
      if (leaseHeld) throw alreadyClaimed(current.claim, 'a claim for this agent is already being paid out');
      return [];
    }
    case 'eligible':
      break;
  }
  if (command.amountMicros <= 0n) throw new Error('claim decider: the claim amount must be positive');
  if (state.hasDeposits)
    throw new DomainError(
      faucetErrors.hasDeposits,
      'agents that have deposited are not eligible for the faucet',
    );
  if (state.remainingBudgetMicros < command.amountMicros) {
    throw new DomainError(faucetErrors.faucetEmpty, 'the faucet treasury is spent; try again after a refill');
  }
  return [
    {
      type: 'claim_requested',
      claimId: command.claimId,
      agentId: command.agentId,
      amountMicros: command.amountMicros,
      requestedAt: isoAt(command.nowMs),
    },
  ];
}

function decideComplete(
  command: Extract<ClaimCommand, { kind: 'complete' }>,
  current: ClaimStatus,
): ClaimEvent[] {
  if (current.status === 'completed' && current.claim.claimId === command.claimId) return [];
  if (current.status !== 'pending' || current.claim.claimId !== command.claimId) {
    // The ledger moved money for a claim that is not pending: must never happen (docs/adr/0003-faucet-claims.md).
    throw new DomainError(
      ClaimError.notPending,
      `claim ${command.claimId} is not pending (${current.status})`,
    );
  }
  const { claim } = current;
  return [
    {
      type: 'claimed',
      claimId: claim.claimId,
      agentId: claim.agentId,
      amountMicros: claim.amountMicros,
      claimedAt: isoAt(command.nowMs),
      inFirstRequest: command.inFirstRequest,
    },
  ];
}

function decideFailure(
  command: Extract<ClaimCommand, { kind: 'fail_transfer' }>,
  current: ClaimStatus,
): ClaimEvent[] {
  // Already stalled, completed or gone: nothing new to record.
  if (current.status !== 'pending' || current.claim.claimId !== command.claimId || current.stalled) return [];
  return [
    {
      type: 'claim_transfer_failed',
      claimId: command.claimId,
      agentId: current.claim.agentId,
      code: command.code,
      failedAt: isoAt(command.nowMs),
    },
  ];
}

function decideReject(
  command: Extract<ClaimCommand, { kind: 'reject' }>,
  current: ClaimStatus,
): ClaimEvent[] {
  if (current.status === 'completed' && current.claim.claimId === command.claimId) {
    throw new Error(`claim decider: the ledger refused claim ${command.claimId} after paying it`);
  }
  if (current.status !== 'pending' || current.claim.claimId !== command.claimId) return [];
  const { claim } = current;
  return [
    {
      type: 'claim_rejected',
      claimId: claim.claimId,
      agentId: claim.agentId,
      amountMicros: claim.amountMicros,
      code: 'faucet_empty',
      rejectedAt: isoAt(command.nowMs),
    },
  ];
}

function evolve(state: ClaimState, event: ClaimEvent): ClaimState {
  switch (event.type) {
    case 'claim_requested': {
      const claim: Claim = {
        claimId: event.claimId,
        agentId: event.agentId,
        amountMicros: event.amountMicros,
        requestedAtMs: Date.parse(event.requestedAt),
      };
      return {
        ...state,
        claim: { status: 'pending', claim, stalled: false },
        remainingBudgetMicros: state.remainingBudgetMicros - event.amountMicros,
      };
    }
    case 'claimed': {
      const claim = claimOf(state.claim, event.claimId);
      return {
        ...state,
        claim: {
          status: 'completed',
          claim,
          claimedAtMs: Date.parse(event.claimedAt),
          inFirstRequest: event.inFirstRequest,
        },
      };
    }
    case 'claim_transfer_failed':
      return {
        ...state,
        claim: { status: 'pending', claim: claimOf(state.claim, event.claimId), stalled: true },
      };
    case 'claim_rejected':
      return {
        ...state,
        claim: { status: 'eligible' },
        remainingBudgetMicros: state.remainingBudgetMicros + event.amountMicros,
      };
  }
}

function claimOf(current: ClaimStatus, claimId: string): Claim {
  if (current.status === 'eligible' || current.claim.claimId !== claimId)
    throw new Error(`claim decider: no claim ${claimId} in this stream`);
  return current.claim;
}

function alreadyClaimed(claim: Claim, message: string): DomainError {
  return new DomainError(faucetErrors.alreadyClaimed, message, { claim_id: claim.claimId });
}

function isoAt(ms: number): string {
  return new Date(ms).toISOString();
}

export function claimStream(agentId: string): string {
  return `claim-${agentId}`;
}
