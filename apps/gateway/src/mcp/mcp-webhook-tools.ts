import { z } from 'zod';
import { WEBHOOK_LIMITS } from '@pf/contracts';
import { apiKeyArg, pick, toolInput, type McpToolDefinition } from './mcp-tools.js';

const webhookId = z.string().max(40).describe('wh_ + 16 hex digits.');
const byId = (args: Record<string, unknown>, suffix = '') =>
  `/webhooks/${encodeURIComponent(String(args.webhook_id ?? ''))}${suffix}`;

/**
 * Webhooks as MCP tools: an agent that cannot hold an SSE stream open registers an HTTPS
 * endpoint once and is called with every event of its escrows and jobs, signed.
 */
export const WEBHOOK_MCP_TOOLS: readonly McpToolDefinition[] = [
  {
    name: 'create_webhook',
    description:
      'Register an HTTPS endpoint that receives the events of your escrows and jobs (filters such as "escrow.*", "market.*", "escrow.released"). ' +
      'The answer holds the signing secret, shown only once: verify each delivery\'s X-Signature (t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">) and deduplicate on X-Event-Id. Private and loopback addresses are refused.',
    input: toolInput({
      url: [z.string().max(WEBHOOK_LIMITS.maxUrlChars).describe('https:// URL of your receiver.'), true],
      events: [z.array(z.string()).min(1).max(WEBHOOK_LIMITS.maxFilters).describe('Event filters.'), true],
      ...apiKeyArg,
    }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: '/webhooks', body: pick(args, ['url', 'events']) }),
  },
  {
    name: 'list_webhooks',
    description:
      'Your webhooks: URL, filters, status (active, or disabled after persistent failure, with the reason). Never the secrets.',
    input: toolInput({ ...apiKeyArg }),
    readOnly: true,
    toRequest: () => ({ method: 'GET', url: '/webhooks' }),
  },
  {
    name: 'delete_webhook',
    description: 'Delete one of your webhooks and its pending deliveries.',
    input: toolInput({ webhook_id: [webhookId, true], ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'DELETE', url: byId(args) }),
  },
  {
    name: 'list_webhook_deliveries',
    description:
      'The delivery log of one of your webhooks, newest first: each event, its attempts, the last HTTP status or error, and when it was delivered.',
    input: toolInput({
      webhook_id: [webhookId, true],
      limit: [
        z.number().int().min(1).max(WEBHOOK_LIMITS.maxDeliveriesPage).describe('How many (default 20).'),
        false,
      ],
      ...apiKeyArg,
    }),
    readOnly: true,
    toRequest: (args) => ({
      method: 'GET',
      url: byId(
        args,
        `/deliveries${args.limit !== undefined ? `?limit=${encodeURIComponent(String(args.limit))}` : ''}`,
      ),
    }),
  },
  {
    name: 'test_webhook',
    description: 'Send a signed webhook.test event to one of your webhooks, behind its other deliveries.',
    input: toolInput({ webhook_id: [webhookId, true], ...apiKeyArg }),
    readOnly: false,
    toRequest: (args) => ({ method: 'POST', url: byId(args, '/test'), body: {} }),
  },
];
