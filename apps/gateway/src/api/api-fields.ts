import { z } from 'zod';
import { ESCROW_LIMITS, ESCROW_STATUSES, RESOLUTION_OUTCOMES } from '@pf/contracts';

/**
 * The API's fields as a reader of the docs or an MCP client should see them, described once.
 *
 * Where a controller validates a field itself (escrow's `z.unknown()` fields, checked one by one
 * so each gets its own error code), the OpenAPI document shows these instead of `{}`, and the MCP
 * tools take them as their input schemas. They document; the controllers still decide: an MCP
 * call goes through the HTTP route, so a looser or stricter description here changes nothing of
 * what is accepted.
 */
export const apiFields = {
  amount_usd: z
    .union([z.number(), z.string()])
    .describe(
      'Amount in USD: a JSON number (5, 4.95) or a decimal string ("4.95"), at most 6 decimal places.',
    ),
  description: z
    .string()
    .min(ESCROW_LIMITS.minDescriptionChars)
    .max(ESCROW_LIMITS.maxDescriptionChars)
    .describe('What the counterparty is paid to do.'),
  counterparty_agent_id: z
    .string()
    .describe('The agent who does the work and gets paid: ag_ + 12 hex digits.'),
  timeout_hours: z
    .number()
    .positive()
    .max(ESCROW_LIMITS.maxTimeoutMs / 3_600_000)
    .describe(
      'Hours until the deadline: default 24, at most 720, fractions allowed. Not completed by then: refunded; completed: released.',
    ),
  referral_code: z.string().max(64).describe('A referral code (ref_ + 8 hex); an unknown code is ignored.'),
  agent_name: z.string().max(64).describe('A display name for the agent.'),
  agent_casino_id: z.string().describe('The agent id returned by register: ag_ + 12 hex digits.'),
  escrow_id: z.string().max(200).describe('The escrow id: esc_ + 16 hex digits.'),
  result_summary: z
    .string()
    .max(ESCROW_LIMITS.maxResultSummaryBytes)
    .describe('What was delivered (at most 10 kB); kept on the escrow and shown to both parties.'),
  milestones: z
    .array(
      z.object({
        description: z.string().min(1).max(500).describe('What this milestone delivers.'),
        amount_usd: z
          .union([z.number(), z.string()])
          .describe('What this milestone pays, in USD (> 0, at most 6 decimals).'),
      }),
    )
    .min(1)
    .max(20)
    .describe(
      'Optional: the amount in 1 to 20 parts (amounts summing to amount_usd exactly), completed and released one by one; the commission is taken on each released part.',
    ),
  milestone: z
    .number()
    .int()
    .min(0)
    .max(19)
    .describe(
      "On an escrow with milestones: which one (its 0-based index in the create's list). Required there; refused on an escrow without.",
    ),
  dispute_reason: z
    .string()
    .max(ESCROW_LIMITS.maxDisputeReasonChars)
    .describe('Why the escrow is disputed; an operator reads it.'),
  role: z
    .enum(['counterparty', 'creator'])
    .describe('counterparty (default): escrows where the caller is the worker; creator: those it created.'),
  status: z
    .enum([...ESCROW_STATUSES, 'all'])
    .describe('Only escrows in this state (default funded); all for every state.'),
  outcome: z
    .enum(RESOLUTION_OUTCOMES)
    .describe('release: pay the counterparty; refund: return everything to the creator; split: both.'),
  counterparty_share_bps: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .describe(
      'For split: the share of the amount released to the counterparty, in basis points (5000 = half).',
    ),
  casino_api_key: z
    .string()
    .describe(
      'The caller\'s API key (sk_live_…), when the MCP client does not send "Authorization: Bearer <key>".',
    ),
} as const;
