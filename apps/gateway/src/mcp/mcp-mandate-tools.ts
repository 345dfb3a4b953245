import { z } from 'zod';
import { MANDATE_ACTIONS, MANDATE_LIMITS } from '@pf/contracts';
import { apiKeyArg, pick, toolInput, type McpToolDefinition } from './mcp-tools.js';

/**
 * Sub-keys and direct payments as MCP tools (ADR 0019). The key in use is whatever the host was
 * configured with (or `casino_api_key`): with a sub-key, pay_agent and create_escrow stay within
 * its mandate; key management needs the agent's main key.
 */

const amount = (what: string) =>
  z.union([z.number(), z.string()]).describe(`${what}, USD (number or decimal string, ≤ 6 decimals).`);
const idempotencyArg = {
  idempotency_key: [
    z
      .string()
      .max(255)
      .describe('Optional: the same value on a retry returns the first answer instead of doing it again.'),
    false,
  ],
} as const;

/** An optional idempotency argument becomes the route's Idempotency-Key header. */
function idempotencyHeader(args: Record<string, unknown>): Record<string, string> {
  return typeof args.idempotency_key === 'string' && args.idempotency_key !== ''
    ? { 'idempotency-key': args.idempotency_key }
    : {};
}

export const MANDATE_MCP_TOOLS: readonly McpToolDefinition[] = [
  {
    name: 'create_key',
    description:
      'Create a sub-key (a separate API key for a bot or tool) with a spending mandate: max_per_transaction_usd, max_per_day_usd (any 24 hours), ' +
      'optional allowed_payees (agent ids) and allowed_actions, and expires_at. Every payment or escrow made with it is checked against the mandate ' +
      'by the ledger itself. The api_key is shown once. Needs the agent’s main key.',
    input: toolInput({
      max_per_transaction_usd: [amount('Most one payment or escrow may move'), true],
      max_per_day_usd: [amount('Most the key may move in any 24 hours'), true],
      expires_at: [z.string().describe('ISO 8601 time with a zone, at most 366 days away.'), true],
      allowed_payees: [
        z
          .array(z.string())
          .max(MANDATE_LIMITS.maxAllowedPayees)
          .describe('Agent ids it may pay; omit for any.'),
        false,
      ],
      allowed_actions: [
        z.array(z.enum(MANDATE_ACTIONS)).describe('What it may do; omit for everything.'),
        false,
      ],
      name: [z.string().max(MANDATE_LIMITS.maxKeyNameChars).describe('A label.'), false],
      ...idempotencyArg,
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: '/api/v1/auth/keys',
      body: pick(args, [
        'max_per_transaction_usd',
        'max_per_day_usd',
        'expires_at',
        'allowed_payees',
        'allowed_actions',
        'name',
      ]),
      headers: idempotencyHeader(args),
    }),
  },
  {
    name: 'list_keys',
    description:
      'The agent’s sub-keys with their mandates, status (active, expired, revoked) and what each spent in the last 24 hours; never a secret. Needs the main key.',
    input: toolInput({ ...apiKeyArg }),
    readOnly: true,
    toRequest: () => ({ method: 'GET', url: '/api/v1/auth/keys' }),
  },
  {
    name: 'revoke_key',
    description:
      'Revoke a sub-key: its payments and escrows are refused at once, everything else within the gateway’s auth cache time. Needs the main key.',
    input: toolInput({
      key_id: [z.string().max(40).describe('key_ + 16 hex, from create_key or list_keys.'), true],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'DELETE',
      url: `/api/v1/auth/keys/${encodeURIComponent(String(args.key_id ?? ''))}`,
    }),
  },
  {
    name: 'pay_agent',
    description:
      'Pay another agent directly (no escrow, no commission): the amount moves from your balance to theirs at once. ' +
      'With a sub-key, within its mandate. Pass the same idempotency_key when retrying so it pays once.',
    input: toolInput({
      to_agent_id: [z.string().max(40).describe('The payee: ag_ + 12 hex.'), true],
      amount_usd: [amount('The amount'), true],
      memo: [z.string().max(MANDATE_LIMITS.maxMemoChars).describe('What it is for.'), false],
      ...idempotencyArg,
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({
      method: 'POST',
      url: '/api/v1/pay',
      body: pick(args, ['to_agent_id', 'amount_usd', 'memo']),
      headers: idempotencyHeader(args),
    }),
  },
];
