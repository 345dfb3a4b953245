import { z } from 'zod';

/**
 * What each tool returns (`outputSchema`), so an MCP host knows the result's fields without
 * calling. Loose objects: the fields named are always there, anything else the route adds
 * (extra compatibility fields, new optional ones) passes; failures are tool errors, unchecked.
 */

const usd = z.number().describe('USD');
const escrowId = z.string().describe('esc_ + 16 hex');
const agentId = z.string().describe('ag_ + 12 hex');
const message = z.string().describe('what happened, in words');

const escrowSummary = z.looseObject({
  escrow_id: escrowId,
  status: z.string().describe('funded, completed, disputed, released, refunded, split'),
  amount_usd: usd,
  created_at: z.string(),
  auto_release_at: z.string().nullable(),
});

/** A milestone as the escrow routes show it (docs/adr/0017). */
const milestoneOutput = z.looseObject({
  milestone: z.number().describe('0-based index'),
  description: z.string(),
  amount_usd: usd,
  status: z.string().describe('pending, completed, released, refunded'),
  payout: z.looseObject({ released_to_counterparty: usd, commission: usd }).nullable(),
});

export const toolOutputs = {
  register_agent: z.looseObject({
    agent_id: agentId,
    api_key: z.string().describe('sk_live_…: shown once; pass it as casino_api_key'),
    referral_code: z.string(),
    message,
    next_steps: z.array(z.string()),
  }),
  get_balance: z.looseObject({
    agent_id: agentId,
    balance_usd: usd.describe('spendable now'),
    held_usd: usd,
    total_usd: usd,
    available_usd: usd,
  }),
  claim_faucet: z.looseObject({ credited: usd, claim_id: z.string(), agent_id: agentId, message }),
  create_escrow: escrowSummary.extend({
    commission_usd: usd,
    net_to_counterparty: usd,
    creator_id: agentId,
    counterparty_id: agentId,
    message,
    next_steps: z.record(z.string(), z.string()),
  }),
  list_pending_escrows: z.looseObject({
    escrows: z.array(z.looseObject({ escrow_id: escrowId, status: z.string(), amount_usd: usd })),
  }),
  get_escrow: escrowSummary.extend({ milestones: z.array(milestoneOutput).optional() }),
  complete_escrow: z.looseObject({
    escrow_id: escrowId,
    status: z.string(),
    message,
    next_step: z.string(),
    milestone: milestoneOutput.optional().describe('only when a milestone was completed'),
  }),
  release_escrow: z.looseObject({
    escrow_id: escrowId,
    status: z.string(),
    released_to_counterparty: usd,
    commission: usd,
    message,
    milestone: milestoneOutput.optional().describe('only when a milestone was released'),
    milestones_open: z.number().optional().describe('milestones not yet released or refunded'),
  }),
  decline_escrow: z.looseObject({ escrow_id: escrowId, status: z.string(), message }),
  reject_escrow: z.looseObject({
    escrow_id: escrowId,
    status: z.string().describe('funded (sent back) or refunded'),
    rejection_reason: z.string(),
    rejected_at: z.string(),
    refunded: z.boolean(),
    message,
  }),
  cancel_escrow: cancelOutput(),
  consent_cancel_escrow: cancelOutput(),
  dispute_escrow: z.looseObject({ escrow_id: escrowId, status: z.string(), message }),
  escrow_stats: z.looseObject({
    total_created: z.number(),
    total_volume_usd: usd,
    total_commission_usd: usd,
    commission_rate: z.number(),
  }),
  escrow_stats_history: z.looseObject({
    bucket: z.enum(['hour', 'day']),
    buckets: z.array(
      z.looseObject({
        start: z.string().describe('UTC bucket start, ISO 8601'),
        released_count: z.number(),
        volume_usd: usd,
        volume_micros: z.string().describe('exact integer micro-dollars'),
        commission_usd: usd,
        commission_micros: z.string().describe('exact integer micro-dollars'),
      }),
    ),
  }),
  ...jobToolOutputs(),
  ...reputationToolOutputs(),
  ...receiptToolOutputs(),
  ...webhookToolOutputs(),
  ...mandateToolOutputs(),
} as const;

/** The webhook tools answer the `/webhooks` routes (docs/API.md, "Webhooks"). */
function webhookToolOutputs() {
  const webhookId = z.string().describe('wh_ + 16 hex');
  const webhook = z.looseObject({
    webhook_id: webhookId,
    url: z.string(),
    events: z.array(z.string()),
    status: z.string().describe('active or disabled'),
    disabled_reason: z.string().nullable(),
    created_at: z.string(),
  });
  return {
    create_webhook: webhook.extend({
      secret: z.string().describe('whsec_…: shown once; signs every delivery'),
      message,
    }),
    list_webhooks: z.looseObject({ webhooks: z.array(webhook) }),
    delete_webhook: z.looseObject({ webhook_id: webhookId, deleted: z.boolean() }),
    list_webhook_deliveries: z.looseObject({
      webhook_id: webhookId,
      deliveries: z.array(
        z.looseObject({
          event_id: z.string(),
          event_type: z.string(),
          state: z.string().describe('pending or delivered'),
          attempts: z.number(),
          last_status: z.number().nullable(),
          last_error: z.string().nullable(),
        }),
      ),
    }),
    test_webhook: z.looseObject({
      webhook_id: webhookId,
      event_id: z.string(),
      event_type: z.string(),
      message,
    }),
  };
}

/** Sub-keys and payments answer `/api/v1/auth/keys` and `/api/v1/pay` (docs/API.md, "Sub-keys and mandates", "Payments"). */
function mandateToolOutputs() {
  const key = z.looseObject({
    key_id: z.string().describe('key_ + 16 hex'),
    agent_id: agentId,
    max_per_transaction_usd: usd,
    max_per_day_usd: usd,
    allowed_payees: z.array(agentId).nullable(),
    allowed_actions: z.array(z.string()).nullable(),
    expires_at: z.string(),
    revoked_at: z.string().nullable(),
    status: z.string().describe('active, expired, revoked'),
    spent_last_24h_usd: usd,
    remaining_today_usd: usd,
  });
  return {
    create_key: key.extend({ api_key: z.string().describe('sk_live_…: shown once'), message }),
    list_keys: z.looseObject({ agent_id: agentId, keys: z.array(key) }),
    revoke_key: key.extend({ message }),
    pay_agent: z.looseObject({
      payment_id: z.string().describe('pay_ + 16 hex'),
      status: z.string(),
      from_agent_id: agentId,
      to_agent_id: agentId,
      amount_usd: usd,
      fee_usd: usd,
      memo: z.string().nullable(),
      paid_at: z.string(),
      balance_usd: usd.describe('your spendable balance after'),
      message,
    }),
  };
}

/** Either half of a cancel by agreement: recorded and waiting, or refunded. */
function cancelOutput() {
  return z.looseObject({
    escrow_id: escrowId,
    status: z.string(),
    cancelled: z
      .boolean()
      .describe('true once both parties agreed: the full amount is back with the creator'),
    cancel_requested_at: z.string().nullable(),
    cancel_consented_at: z.string().nullable(),
    message,
  });
}

/** get_receipt answers `/receipts/{id}` (one receipt) or `/receipts?settlement_id=` (a list). */
function receiptToolOutputs() {
  const receipt = z.looseObject({
    receipt_id: z.string().describe('rcpt_ + 32 hex'),
    receipt: z
      .record(z.string(), z.string().nullable())
      .describe('the signed facts; amounts in micro-dollars'),
    signature: z.string().describe('base64 Ed25519 signature of the canonical JSON of receipt'),
    key_id: z.string(),
  });
  return {
    get_receipt: z.looseObject({
      receipt_id: z.string().optional(),
      receipt: receipt.shape.receipt.optional(),
      signature: z.string().optional(),
      receipts: z.array(receipt).optional().describe('when asked by settlement_id'),
    }),
  };
}

/** The reputation tools answer `/agents/{id}/reputation`, `/leaderboard` and the rating route (docs/API.md, "Reputation"). */
function reputationToolOutputs() {
  const score = z.number().describe('0..100');
  return {
    get_reputation: z.looseObject({
      agent_id: agentId,
      computed_at: z.string(),
      worker: z.looseObject({ score, completed: z.number(), total_earned_usd: usd }),
      poster: z.looseObject({ score, jobs_posted: z.number() }),
      latest_ratings: z.array(z.looseObject({})),
    }),
    leaderboard: z.looseObject({
      by: z.string(),
      role: z.string(),
      entries: z.array(z.looseObject({ rank: z.number(), agent_id: agentId, score })),
    }),
    rate_agent: z.looseObject({
      escrow_id: escrowId,
      rater_id: agentId,
      ratee_id: agentId,
      score: z.number().describe('1..5'),
      amount_usd: usd,
      rated_at: z.string(),
    }),
  };
}

/** The job board's tools answer the `/jobs` routes' shapes (docs/API.md, "Jobs"). */
function jobToolOutputs() {
  const jobId = z.string().describe('job_ + 16 hex');
  const job = z.looseObject({
    job_id: jobId,
    poster_id: agentId,
    title: z.string(),
    budget_usd: usd,
    status: z.string().describe('open, awarding, awarded, completed, cancelled'),
    award_policy: z.string(),
    bids_close_at: z.string(),
    bid_count: z.number(),
    awards: z.array(
      z.looseObject({ bid_id: z.string(), worker_id: agentId, escrow_id: escrowId, price_usd: usd }),
    ),
    winner_escrow_id: escrowId.nullable(),
  });
  return {
    post_job: job.extend({ message }),
    list_jobs: z.looseObject({ jobs: z.array(job), next_cursor: z.string().nullable() }),
    get_job: job,
    place_bid: z.looseObject({
      bid_id: z.string(),
      job_id: jobId,
      price_usd: usd,
      eta_minutes: z.number(),
      status: z.string(),
      message,
    }),
    withdraw_bid: z.looseObject({ job_id: jobId, status: z.string(), bid_count: z.number(), message }),
    award_job: job.extend({ message }),
    cancel_job: job.extend({ message }),
  };
}
