import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, type ErrorBody } from '@pf/contracts';

/** Deepest JSON accepted: the API's bodies are 2–3 levels, an MCP call about 6. */
export const MAX_JSON_DEPTH = 32;

/** A UTF-16 surrogate without its pair: not encodable as UTF-8, so no store can keep it. */
const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Postgres `text` refuses NUL; a lone surrogate has no UTF-8 form. */
function isStorable(text: string): boolean {
  return !text.includes('\u0000') && !UNPAIRED_SURROGATE.test(text);
}

/**
 * What is wrong with a parsed JSON value or request part, if anything: nested deeper than
 * MAX_JSON_DEPTH, or a string (value or object key) that no store can keep. Checked once at the
 * edge for every request, so no field anywhere can carry either further. Iterative on purpose:
 * a recursive walk is the stack overflow this guards against.
 */
export function unsafeInputProblem(value: unknown): string | undefined {
  const pending: Array<{ item: unknown; depth: number }> = [{ item: value, depth: 0 }];
  while (pending.length > 0) {
    const { item, depth } = pending.pop()!;
    if (typeof item === 'string') {
      if (!isStorable(item)) return 'text must not contain NUL characters or unpaired UTF-16 surrogates';
      continue;
    }
    if (item === null || typeof item !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return `JSON must not be nested more than ${MAX_JSON_DEPTH} levels deep`;
    if (Array.isArray(item)) {
      for (const element of item) pending.push({ item: element, depth: depth + 1 });
      continue;
    }
    for (const [key, element] of Object.entries(item)) {
      pending.push({ item: key, depth: depth + 1 }, { item: element, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * The same check on path and query parameters (bodies are checked as they are parsed, see
 * json-body.ts). A preValidation hook, so it runs before the idempotency claim (preHandler).
 */
export function installInputGuard(fastify: FastifyInstance): void {
  fastify.addHook('preValidation', async (request: FastifyRequest, reply: FastifyReply) => {
    const problem = unsafeInputProblem(request.params) ?? unsafeInputProblem(request.query);
    if (!problem) return;
    const body: ErrorBody = { error: ErrorCode.invalidRequest, message: `path or query: ${problem}` };
    return reply
      .code(400)
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(body));
  });
}
