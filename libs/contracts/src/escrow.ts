import { z } from 'zod';
import { agentIdSchema, operationIdSchema, positiveMicrosSchema } from './casino.js';
import { milestoneIndexSchema, milestonesInputSchema, type MilestoneView } from './escrow-milestones.js';
import { ESCROW_CANCEL_REASONS, JOB_ID_PATTERN } from './market.js';

/**
 * Escrow commands over NATS (answered by apps/escrow). Amounts travel as integer micro-dollar
 * strings; the gateway turns API fields (USD numbers, hours) into these and back.
 */
export const escrowCommands = {
  ping: 'escrow.cmd.ping',
  create: 'escrow.cmd.create',
  get: 'escrow.cmd.get',
  list: 'escrow.cmd.list',
  complete: 'escrow.cmd.complete',
  release: 'escrow.cmd.release',
  decline: 'escrow.cmd.decline',
  dispute: 'escrow.cmd.dispute',
  resolve: 'escrow.cmd.resolve',
  stats: 'escrow.cmd.stats',
  /** Released volume and commission per hour or day (`GET /escrow/stats/history`, the dashboard's chart). */
  statsHistory: 'escrow.cmd.stats_history',
  /** Operators: the timeout saga's lag and the next deadlines due (the dashboard's operator view). */
  deadlines: 'escrow.cmd.deadlines',
  /** Sent only by the market: gives a funded job escrow's money back (docs/adr/0011). */
  cancel: 'escrow.cmd.cancel',
  /** The evaluator refuses the delivered work: back to funded, or a full refund (docs/adr/0016). */
  reject: 'escrow.cmd.reject',
  /**
   * The parties' cancel by agreement (`POST /escrow/cancel` and `/escrow/consent-cancel`): a
   * subject apart from the market's `cancel`, so the gateway may send these and never that one.
   */
  requestCancel: 'escrow.cmd.request_cancel',
  consentCancel: 'escrow.cmd.consent_cancel',
} as const;

export const escrowErrors = {
  invalidDescription: 'invalid_description',
  invalidCounterparty: 'invalid_counterparty',
  selfEscrow: 'self_escrow',
  invalidTimeout: 'invalid_timeout',
  counterpartyNotFound: 'counterparty_not_found',
  invalidStatus: 'invalid_status',
  invalidResultSummary: 'invalid_result_summary',
  invalidResolution: 'invalid_resolution',
  /** An escrow id (derived from an Idempotency-Key) reused for a different escrow. */
  escrowIdReused: 'escrow_id_reused',
  /** `evaluator_agent_id` malformed, or naming the creator or the counterparty. */
  invalidEvaluator: 'invalid_evaluator',
  evaluatorNotFound: 'evaluator_not_found',
  /** `evaluator_fee_bps` not an integer 0..1000, or given without an evaluator. */
  invalidEvaluatorFee: 'invalid_evaluator_fee',
  /** Only the escrow's evaluator may release or reject it (403). */
  notEvaluator: 'not_evaluator',
  invalidDeliverable: 'invalid_deliverable',
  invalidRejectReason: 'invalid_reject_reason',
  /** `bucket` not hour|day, or `limit` not an integer within the bucket's bound. */
  invalidHistoryQuery: 'invalid_history_query',
} as const;

/** Escrow ids: `esc_` + 16 hex (API.md, Conventions). */
export const ESCROW_ID_PATTERN = /^esc_[0-9a-f]{16}$/;

/**
 * Lifecycle states. `opened` is the instant between recording the escrow and the casino's hold
 * (seconds at most when casino is down); `rejected` means the hold was refused, so for the API
 * the escrow never existed. `split` is a dispute an operator settled partly each way.
 */
export const ESCROW_STATUSES = [
  'opened',
  'funded',
  'completed',
  'disputed',
  'released',
  'refunded',
  'split',
  'rejected',
] as const;
export type EscrowStatus = (typeof ESCROW_STATUSES)[number];

/** Escrow limits from API.md. */
export const ESCROW_LIMITS = {
  minAmountMicros: 100_000n,
  minDescriptionChars: 3,
  maxDescriptionChars: 1_000,
  defaultTimeoutMs: 24 * 3_600_000,
  maxTimeoutMs: 720 * 3_600_000,
  /** `result_summary` is kept on the escrow: at most 10 kB of UTF-8. */
  maxResultSummaryBytes: 10_240,
  maxDisputeReasonChars: 2_000,
  maxListLimit: 500,
  /** An evaluator's fee is at most 10% of the amount, paid only when the evaluator releases. */
  maxEvaluatorFeeBps: 1_000,
  maxRejectReasonChars: 2_000,
  maxDeliverableUrlChars: 2_048,
  maxDeliverableMimeChars: 255,
} as const;

/** Casino's system account that collects the house share of commissions. */
export const HOUSE_REVENUE_ACCOUNT = 'house_revenue';

/** Loose on purpose where the domain gives a field-specific error code (invalid_counterparty…). */
export const createEscrowCommandSchema = z.object({
  /** Chosen by the caller (derived from an Idempotency-Key) so a retried create finds its escrow. */
  escrowId: z.string().regex(ESCROW_ID_PATTERN).optional(),
  creatorId: agentIdSchema,
  counterpartyId: z.string().max(200),
  amountMicros: positiveMicrosSchema,
  description: z.string().max(100_000),
  timeoutMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  /** Accepted for compatibility and ignored: the referrer is the creator's own (see docs/events.md). */
  referralCode: z.string().max(200).optional(),
  /**
   * Set only by the market: the job this escrow pays for. Such an escrow can be cancelled by the
   * market (`escrow.cmd.cancel`); with `race`, only the market may release it (one payout per race).
   */
  jobId: z.string().regex(JOB_ID_PATTERN).optional(),
  race: z.boolean().optional(),
  /** The agent who alone may release or reject (docs/adr/0016); checked by the domain. */
  evaluatorId: z.string().max(200).optional(),
  /** Paid to the evaluator out of the amount when the evaluator releases; checked by the domain. */
  evaluatorFeeBps: z.number().optional(),
  /** Milestones (docs/adr/0017): amounts in micros summing to the amount; checked by the domain. */
  milestones: milestonesInputSchema.optional(),
  /** The creator's sub-key (ADR 0019): escrow forwards it with the hold, so casino checks its mandate. */
  keyId: z
    .string()
    .regex(/^key_[0-9a-f]{16}$/)
    .optional(),
});
export type CreateEscrowCommand = z.input<typeof createEscrowCommandSchema>;

/** Unknown or malformed ids are a 404, not a 400: the API answers "no such escrow" either way. */
const escrowRefSchema = z.string().min(1).max(200);

const actionSchema = z.object({
  escrowId: escrowRefSchema,
  actorId: agentIdSchema,
  /** Derived from an Idempotency-Key: the same command again answers with its first outcome. */
  commandId: operationIdSchema.optional(),
});

export const completeEscrowCommandSchema = actionSchema.extend({
  resultSummary: z.string().max(1_000_000).nullable().optional(),
  /** What was handed over; checked field by field with `parseDeliverable` (invalid_deliverable). */
  deliverable: z.unknown().optional(),
  /** On an escrow with milestones: which one is done (0-based). */
  milestone: milestoneIndexSchema.optional(),
});
export type CompleteEscrowCommand = z.input<typeof completeEscrowCommandSchema>;
/** `jobId` is sent only by the market, releasing the winner of a race on the poster's behalf. */
export const releaseEscrowCommandSchema = actionSchema.extend({
  jobId: z.string().regex(JOB_ID_PATTERN).optional(),
  /** On an escrow with milestones: which one to release (0-based). */
  milestone: milestoneIndexSchema.optional(),
});
export const declineEscrowCommandSchema = actionSchema;
/** The evaluator's rejection: `reason` is checked by the domain (invalid_reject_reason). */
export const rejectEscrowCommandSchema = actionSchema.extend({
  reason: z.unknown().optional(),
  refund: z.boolean().optional(),
});
export type RejectEscrowCommand = z.input<typeof rejectEscrowCommandSchema>;
/** The creator's half (`requestCancel`) or the counterparty's half (`consentCancel`) of a cancel by agreement. */
export const agreeCancelEscrowCommandSchema = actionSchema;
export const disputeEscrowCommandSchema = actionSchema.extend({
  reason: z.string().max(ESCROW_LIMITS.maxDisputeReasonChars).nullable().optional(),
});
/**
 * The market's cancel of a job escrow: the money goes back to the creator in full, no commission.
 * `job_cancelled` and `award_failed` need the escrow `funded` (a worker who completed is paid);
 * `race_lost` also takes a `completed` escrow of a race, because a race pays only its first
 * completion (the rule every bidder of a race accepted).
 */
export const cancelEscrowCommandSchema = z.object({
  escrowId: escrowRefSchema,
  jobId: z.string().regex(JOB_ID_PATTERN),
  reason: z.enum(ESCROW_CANCEL_REASONS),
  commandId: operationIdSchema.optional(),
});
export type CancelEscrowCommand = z.input<typeof cancelEscrowCommandSchema>;
export type EscrowActionCommand = z.input<typeof actionSchema>;
export type DisputeEscrowCommand = z.input<typeof disputeEscrowCommandSchema>;

export const RESOLUTION_OUTCOMES = ['release', 'refund', 'split'] as const;
export type ResolutionOutcome = (typeof RESOLUTION_OUTCOMES)[number];
export const resolveEscrowCommandSchema = z.object({
  escrowId: escrowRefSchema,
  outcome: z.enum(RESOLUTION_OUTCOMES),
  /** Only for `split`: the share of the amount released to the counterparty (commission is taken on it). */
  counterpartyShareBps: z.number().int().min(0).max(10_000).optional(),
  commandId: operationIdSchema.optional(),
});
export type ResolveEscrowCommand = z.input<typeof resolveEscrowCommandSchema>;

export const getEscrowCommandSchema = z.object({
  escrowId: escrowRefSchema,
  /** The participant's view (with its history) only when the viewer is a party. */
  viewerId: agentIdSchema.optional(),
});

export const listEscrowsCommandSchema = z.object({
  agentId: agentIdSchema,
  /** `evaluator`: the escrows this agent judges (docs/adr/0016). */
  role: z.enum(['creator', 'counterparty', 'evaluator']).default('counterparty'),
  status: z.enum([...ESCROW_STATUSES, 'all']).default('funded'),
  limit: z.number().int().min(1).max(ESCROW_LIMITS.maxListLimit).default(100),
});
export type ListEscrowsCommand = z.input<typeof listEscrowsCommandSchema>;

/** Where the money went when an escrow was settled by a post (release or split). */
export interface EscrowPayoutView {
  counterpartyMicros: string;
  commissionMicros: string;
  houseMicros: string;
  referrerMicros: string;
  referrerId: string | null;
  /** The part returned to the creator (a split); "0" on a release. */
  creatorMicros: string;
  /** Only on an escrow with an evaluator: the evaluator's fee (0 unless the evaluator released). */
  evaluatorMicros?: string;
  evaluatorId?: string;
}

export interface EscrowHistoryItem {
  type: string;
  at: string;
  /** The agent who acted, `system` (funding, deadlines) or `operator` (dispute resolution). */
  actor: string;
  /** On a `completed` or `milestone_completed` entry: what that completion handed over (docs/adr/0016). */
  deliverable?: Deliverable;
  /** On an evaluator's rejection: its reason. */
  reason?: string;
}

/** An escrow as the service reports it; the gateway decides which fields a caller sees. */
export interface EscrowView {
  escrowId: string;
  status: EscrowStatus;
  creatorId: string;
  counterpartyId: string;
  amountMicros: string;
  commissionBps: number;
  /** Commission and net on a full release (what create promises). */
  commissionMicros: string;
  netToCounterpartyMicros: string;
  description: string;
  resultSummary: string | null;
  disputeReason: string | null;
  timeoutMs: number;
  createdAt: string;
  autoReleaseAt: string | null;
  completedAt: string | null;
  releasedAt: string | null;
  refundedAt: string | null;
  disputedAt: string | null;
  resolvedAt: string | null;
  payout: EscrowPayoutView | null;
  /** The evaluator (null: the creator releases) and its fee on release, in basis points. */
  evaluatorId: string | null;
  evaluatorFeeBps: number;
  /** What the counterparty handed over with its last completion. */
  deliverable: Deliverable | null;
  /** The evaluator's last rejection (the escrow went back to funded, or was refunded). */
  rejectReason: string | null;
  rejectedAt: string | null;
  /** When each party agreed to cancel (both: the escrow was refunded). */
  cancelRequestedAt: string | null;
  cancelConsentedAt: string | null;
  /** Only on an escrow created with milestones (docs/adr/0017). */
  milestones?: MilestoneView[];
  /** Only in `get` replies to a party of the escrow: its history. */
  events?: EscrowHistoryItem[];
}

export interface EscrowListReply {
  escrows: EscrowView[];
}

export interface EscrowStatsReply {
  totalCreated: number;
  totalReleased: number;
  totalRefunded: number;
  totalDisputed: number;
  totalSplit: number;
  totalVolumeMicros: string;
  totalCommissionMicros: string;
  commissionBps: number;
  /** Escrows per current status (funded, completed, disputed, released, refunded, split). */
  byStatus: Record<string, number>;
}

/**
 * Buckets one `escrow.cmd.stats_history` answers at most: a week of hours, a quarter of days.
 * Bounded so one public read never scans or returns an unbounded series.
 */
export const STATS_HISTORY_MAX_BUCKETS = { hour: 168, day: 90 } as const;
export const STATS_HISTORY_DEFAULT_BUCKETS = { hour: 24, day: 30 } as const;
export const STATS_HISTORY_BUCKETS = ['hour', 'day'] as const;
export type StatsHistoryBucket = (typeof STATS_HISTORY_BUCKETS)[number];
export const statsHistoryCommandSchema = z
  .object({ bucket: z.enum(STATS_HISTORY_BUCKETS), limit: z.number().int().min(1) })
  .refine((command) => command.limit <= STATS_HISTORY_MAX_BUCKETS[command.bucket], {
    message: 'limit above the bucket maximum',
    path: ['limit'],
  });
export type StatsHistoryCommand = z.infer<typeof statsHistoryCommandSchema>;
export interface StatsHistoryBucketView {
  /** The bucket's start (UTC, truncated to the hour or the day), ISO 8601. */
  start: string;
  /** Escrows whose money went out (released, or resolved with a payout) in the bucket. */
  releasedCount: number;
  /** Their full amounts, integer micro-dollars. */
  volumeMicros: string;
  /** The platform commission they paid (`commission_taken_micros`), integer micro-dollars. */
  commissionMicros: string;
}
export interface StatsHistoryReply {
  bucket: StatsHistoryBucket;
  /** Oldest first, ending with the current (still open) bucket; empty buckets are zeros. */
  buckets: StatsHistoryBucketView[];
}

/** Deadlines listed at most by `escrow.cmd.deadlines`. */
export const DEADLINES_LIST_MAX = 100;
export const deadlinesCommandSchema = z.object({
  limit: z.number().int().min(1).max(DEADLINES_LIST_MAX).default(10),
});
export interface DeadlinesReply {
  /** The database's clock, the saga's one clock. */
  now: string;
  /** Deadlines already due and not yet turned into a refund or an auto-release. */
  overdueCount: number;
  /** How late the oldest overdue deadline is: the saga's lag (0 when none is overdue). */
  lagMs: number;
  pendingCount: number;
  /** The earliest deadlines, overdue first. */
  next: Array<{ escrowId: string; dueAt: string; status: string; amountMicros: string }>;
}

/** What the counterparty handed over: where it is, its digest, its media type (any subset, not none). */
export interface Deliverable {
  url?: string;
  /** 64 lowercase hex characters. */
  sha256?: string;
  mime?: string;
}
