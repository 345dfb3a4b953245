import { z } from 'zod';
import { agentIdSchema } from './casino.js';

/**
 * Faucet commands over NATS. A claim is $1 (configurable) from the faucet treasury to an agent
 * that never deposited, once per agent, ever. The gateway passes the client's address so the
 * faucet, which owns the per-IP allowance, can enforce it.
 */
export const faucetCommands = {
  claim: 'faucet.cmd.claim',
  stats: 'faucet.cmd.stats',
} as const;

export const faucetErrors = {
  ipRateLimited: 'ip_rate_limited',
  alreadyClaimed: 'already_claimed',
  hasDeposits: 'has_deposits',
  faucetEmpty: 'faucet_empty',
} as const;

/** Event types the faucet publishes on `faucet.events.<type>` (FAUCET_EVENTS). */
export const faucetEventTypes = {
  /** Intent recorded; the transfer from the treasury follows. */
  claimRequested: 'claim_requested',
  /** The $1 reached the agent (data: claimId, agentId, amountMicros). */
  claimed: 'claimed',
  /** The ledger refused the transfer: the claim ended without money and the agent may claim again. */
  claimRejected: 'claim_rejected',
  /** The ledger did not answer; the claim stays pending and a retry or the sweep completes it. */
  claimTransferFailed: 'claim_transfer_failed',
  treasuryFunded: 'treasury_funded',
} as const;

/** IPv4 or IPv6 text as the gateway saw it; only compared for equality. */
const clientIpSchema = z
  .string()
  .min(2)
  .max(64)
  .regex(/^[0-9A-Fa-f.:]+$/, 'must be an IP address');

export const claimCommandSchema = z.object({
  agentId: agentIdSchema,
  /** Absent when the caller has no client address (e.g. an internal tool): no IP limit then. */
  clientIp: clientIpSchema.nullish(),
  /** Accepted for compatibility with the public API; unused. */
  referralCode: z.string().max(64).optional(),
});
export type ClaimCommand = z.input<typeof claimCommandSchema>;

export interface ClaimReply {
  /** A UUID; also the ledger transfer id of the credit. */
  claimId: string;
  agentId: string;
  amountMicros: string;
  claimedAt: string;
}

export const faucetStatsCommandSchema = z.object({});
export interface FaucetStatsView {
  /** Completed claims. */
  totalClaims: number;
  /** Distinct agents with a completed claim. */
  totalAgents: number;
  /** Sum of completed claims. */
  totalValueMicros: string;
  /** Funded budget minus everything claimed or reserved by claims in progress. */
  remainingBudgetMicros: string;
  /** Everything ever funded into the treasury. */
  fundedMicros: string;
  /** Claims recorded whose transfer has not completed yet. */
  pendingClaims: number;
}
