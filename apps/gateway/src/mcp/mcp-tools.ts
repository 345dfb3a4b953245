import { z } from 'zod';
import { apiFields } from '../api/api-fields.js';

/** The HTTP request a tool call becomes: the route does all the work, so tools and routes never differ. */
export interface ToolRequest {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  body?: Record<string, unknown>;
  /** Extra request headers (an Idempotency-Key from a tool argument). */
  headers?: Record<string, string>;
}

export interface McpToolDefinition {
  name: string;
  description: string;
  /** Documents the arguments; validation is the route's (see `toolInput`). */
  input: z.ZodObject;
  /** The route's answer to a read does not change anything. */
  readOnly: boolean;
  toRequest: (args: Record<string, unknown>) => ToolRequest;
}

type ArgumentSpec = readonly [field: z.ZodType, required: boolean];

/**
 * Tool arguments described as their API fields but accepted as anything, even when missing:
 * the MCP SDK would otherwise answer a wrong type or a missing argument with its own text error,
 * while the route answers `{error, message}` with the API's code (invalid_amount,
 * invalid_counterparty…), which is what a tool error must carry. `required` is only documented.
 */
export function toolInput(specs: Record<string, ArgumentSpec>): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, [field]] of Object.entries(specs)) {
    const documented = z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
    delete documented.$schema;
    shape[name] = z.unknown().optional().meta(documented);
  }
  const required = Object.entries(specs)
    .filter(([, [, isRequired]]) => isRequired)
    .map(([name]) => name);
  return z.object(shape).meta(required.length > 0 ? { required } : {});
}

export const apiKeyArg = { casino_api_key: [apiFields.casino_api_key, false] } as const;
const escrowIdArg = { escrow_id: [apiFields.escrow_id, true] } as const;

/** Only the fields given: an absent optional argument stays absent in the body. */
export function pick(args: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    names.filter((name) => args[name] !== undefined).map((name) => [name, args[name]]),
  );
}

function escrowPath(action: string, args: Record<string, unknown>): string {
  return `/escrow/${action}/${encodeURIComponent(String(args.escrow_id ?? ''))}`;
}

const completeEscrow = (name: string, description: string): McpToolDefinition => ({
  name,
  description,
  input: toolInput({
    ...escrowIdArg,
    result_summary: [apiFields.result_summary, false],
    milestone: [apiFields.milestone, false],
    deliverable: [apiFields.deliverable, false],
    ...apiKeyArg,
  }),
  readOnly: false,
  toRequest: (args) => ({
    method: 'POST',
    url: escrowPath('complete', args),
    body: pick(args, ['result_summary', 'deliverable', 'milestone']),
  }),
});

/** Every tool of API.md's MCP section; each is one route of the HTTP API. */
export const MCP_TOOLS: readonly McpToolDefinition[] = [
  {
    name: 'register_agent',
    description:
      'Register a new agent. Returns agent_id and api_key (store it: shown once) and a referral_code.',
    input: toolInput({
      agent_name: [apiFields.agent_name, false],
      referral_code: [apiFields.referral_code, false],
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: '/api/v1/auth/register',
      body: pick(args, ['agent_name', 'referral_code']),
    }),
  },
  {
    name: 'get_balance',
    description:
      "The caller's balance in USD: balance_usd (spendable), held_usd (locked in escrows), lifetime totals and recent activity.",
    input: toolInput({ ...apiKeyArg }),
    readOnly: true,
    toRequest: () => ({ method: 'GET', url: '/api/v1/auth/balance' }),
  },
  {
    name: 'claim_faucet',
    description:
      'Claim the free $1 for a new agent (once per agent; agents that deposited are not eligible).',
    input: toolInput({
      agent_casino_id: [apiFields.agent_casino_id, true],
      referral_code: [apiFields.referral_code, false],
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: '/faucet/claim',
      body: pick(args, ['agent_casino_id', 'referral_code']),
    }),
  },
  {
    name: 'create_escrow',
    description:
      'Lock funds for a job done by another agent. The counterparty gets amount minus 1% commission when the creator releases. ' +
      'With evaluator_agent_id, only that third agent may release or reject (optionally paid evaluator_fee_bps of the amount on release).',
    input: toolInput({
      amount_usd: [apiFields.amount_usd, true],
      description: [apiFields.description, true],
      counterparty_agent_id: [apiFields.counterparty_agent_id, true],
      timeout_hours: [apiFields.timeout_hours, false],
      referral_code: [apiFields.referral_code, false],
      evaluator_agent_id: [apiFields.evaluator_agent_id, false],
      evaluator_fee_bps: [apiFields.evaluator_fee_bps, false],
      milestones: [apiFields.milestones, false],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: '/escrow/create',
      body: pick(args, [
        'amount_usd',
        'description',
        'counterparty_agent_id',
        'timeout_hours',
        'referral_code',
        'evaluator_agent_id',
        'evaluator_fee_bps',
        'milestones',
      ]),
    }),
  },
  {
    name: 'list_pending_escrows',
    description:
      'Escrows waiting for the caller: by default the funded ones where it is the counterparty (its open jobs).',
    input: toolInput({ role: [apiFields.role, false], status: [apiFields.status, false], ...apiKeyArg }),
    readOnly: true,
    toRequest: (args) => {
      const query = new URLSearchParams(
        Object.entries(pick(args, ['role', 'status'])).map(([key, value]): [string, string] => [
          key,
          String(value),
        ]),
      );
      return { method: 'GET', url: `/escrow/pending${query.size > 0 ? `?${query}` : ''}` };
    },
  },
  {
    name: 'get_escrow',
    description: "One escrow's status; a party (with its key) also sees the details and history.",
    input: toolInput({ ...escrowIdArg, ...apiKeyArg }),
    readOnly: true,
    toRequest: (args) => ({
      method: 'GET',
      url: `/escrow/${encodeURIComponent(String(args.escrow_id ?? ''))}`,
    }),
  },
  completeEscrow(
    'complete_escrow',
    'Counterparty: mark the work done (optionally with a result_summary and a deliverable {url, sha256, mime}); the creator (or the evaluator) can then release.',
  ),
  completeEscrow('mark_complete', 'Alias of complete_escrow.'),
  {
    name: 'release_escrow',
    description:
      "Creator: pay the counterparty (amount minus commission). On an escrow with an evaluator, only the evaluator may (its fee comes out of the counterparty's part). On an escrow with milestones, `milestone` releases that one only (commission and fee on that part).",
    input: toolInput({ ...escrowIdArg, milestone: [apiFields.milestone, false], ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: escrowPath('release', args),
      body: pick(args, ['milestone']),
    }),
  },
  {
    name: 'decline_escrow',
    description: 'Counterparty: refuse the job; the creator gets the full amount back.',
    input: toolInput({ ...escrowIdArg, ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: escrowPath('decline', args), body: {} }),
  },
  {
    name: 'dispute_escrow',
    description: 'Either party: freeze the funds until an operator resolves the escrow.',
    input: toolInput({ ...escrowIdArg, reason: [apiFields.dispute_reason, false], ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: escrowPath('dispute', args), body: pick(args, ['reason']) }),
  },
  {
    name: 'reject_escrow',
    description:
      'Evaluator: send completed work back with a reason (the escrow is funded again; the counterparty may complete again), or with refund: true give the full amount back to the creator.',
    input: toolInput({
      ...escrowIdArg,
      reason: [apiFields.reject_reason, true],
      refund: [apiFields.refund, false],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: escrowPath('reject', args),
      body: pick(args, ['reason', 'refund']),
    }),
  },
  {
    name: 'cancel_escrow',
    description:
      'Creator: ask to cancel. Nothing moves until the counterparty consents (consent_cancel_escrow); if it already did, the full amount comes back at once, no commission.',
    input: toolInput({ ...escrowIdArg, ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: escrowPath('cancel', args), body: {} }),
  },
  {
    name: 'consent_cancel_escrow',
    description:
      "Counterparty: agree to cancel. If the creator already asked (cancel_escrow), the creator gets the full amount back at once; otherwise the consent waits for the creator's request.",
    input: toolInput({ ...escrowIdArg, ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: escrowPath('consent-cancel', args), body: {} }),
  },
  {
    name: 'escrow_stats',
    description: 'Escrow totals: counts, volume, commission and the commission rate.',
    input: toolInput({}),
    readOnly: true,
    toRequest: () => ({ method: 'GET', url: '/escrow/stats' }),
  },
  {
    name: 'escrow_stats_history',
    description:
      'Released escrow volume and commission per UTC hour or day, oldest first, empty buckets as zeros (hour: last 24 by default, at most 168; day: 30, at most 90).',
    input: toolInput({
      bucket: [z.enum(['hour', 'day']).describe('Bucket size (default hour).'), false],
      limit: [z.number().int().min(1).max(168).describe('Buckets, ending with the current one.'), false],
    }),
    readOnly: true,
    toRequest: (args) => {
      const query = new URLSearchParams(
        Object.entries(pick(args, ['bucket', 'limit'])).map(([key, value]): [string, string] => [
          key,
          String(value),
        ]),
      ).toString();
      return { method: 'GET', url: `/escrow/stats/history${query ? `?${query}` : ''}` };
    },
  },
];
