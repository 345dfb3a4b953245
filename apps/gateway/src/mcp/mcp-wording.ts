/**
 * The routes' `message` / `next_steps` tell an HTTP client what to call next ("POST
 * /escrow/release/esc_… with Authorization: Bearer <api_key>"). Through MCP the agent calls
 * tools, so the same hints are reworded to name the tool and its arguments. Only the wording
 * fields change; every other field is the route's JSON as is.
 */

interface RouteWording {
  pattern: RegExp;
  toTool: (...groups: string[]) => string;
}

const ESCROW_ID = '(esc_[0-9a-f]{16}|\\{id\\}|<escrow_id>)';

const ROUTES: readonly RouteWording[] = [
  {
    pattern: /POST \/faucet\/claim(?: \{"agent_casino_id": "<agent_id>"\})?/g,
    toTool: () => 'claim_faucet {"agent_casino_id": "<agent_id>"}',
  },
  { pattern: /GET \/api\/v1\/auth\/balance/g, toTool: () => 'get_balance' },
  { pattern: /POST \/api\/v1\/auth\/register/g, toTool: () => 'register_agent' },
  { pattern: /POST \/escrow\/create/g, toTool: () => 'create_escrow' },
  { pattern: /GET \/escrow\/pending/g, toTool: () => 'list_pending_escrows' },
  // Before escrow_stats, whose pattern is its prefix.
  { pattern: /GET \/escrow\/stats\/history/g, toTool: () => 'escrow_stats_history' },
  { pattern: /GET \/escrow\/stats/g, toTool: () => 'escrow_stats' },
  {
    pattern: new RegExp(`POST /escrow/(complete|release|decline|dispute)/${ESCROW_ID}`, 'g'),
    toTool: (action, id) => `${action}_escrow {"escrow_id": "${id}"}`,
  },
  {
    pattern: new RegExp(`GET /escrow/${ESCROW_ID}`, 'g'),
    toTool: (id) => `get_escrow {"escrow_id": "${id}"}`,
  },
];

/** "… with Authorization: Bearer <api_key>" becomes the argument MCP clients pass. */
const AUTH_PHRASE = /,? with Authorization: Bearer <api_key>/g;

export function toolWording(text: string): string {
  let worded = text.replace(AUTH_PHRASE, ' (casino_api_key: <api_key>)');
  for (const route of ROUTES)
    worded = worded.replace(route.pattern, (...args: unknown[]) => route.toTool(...captures(args)));
  return worded;
}

/** A replacer's arguments are (match, ...captures, offset, input): the captures only. */
function captures(args: readonly unknown[]): string[] {
  const groups: string[] = [];
  for (const arg of args.slice(1)) {
    if (typeof arg !== 'string') break;
    groups.push(arg);
  }
  return groups;
}

const WORDING_FIELDS = ['message', 'next_step', 'next_steps', 'suggestion'] as const;

/** The route's body with its hints naming tools; a non-object body is returned as is. */
export function withToolWording(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const reworded: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const field of WORDING_FIELDS) if (field in reworded) reworded[field] = rewordValue(reworded[field]);
  return reworded;
}

function rewordValue(value: unknown): unknown {
  if (typeof value === 'string') return toolWording(value);
  if (Array.isArray(value)) return value.map(rewordValue);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, rewordValue(inner)]));
  return value;
}
