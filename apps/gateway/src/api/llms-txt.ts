import type { JsonSchema } from './openapi.js';

/**
 * `/llms.txt`: the whole API contract as plain Markdown for a model to read in one go. Made from
 * the OpenAPI document itself (and the MCP tool list), never written by hand, so the two
 * cannot drift: a route, field or error code added to the OpenAPI document appears here too.
 */

export interface ToolSummary {
  name: string;
  description: string;
}

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{
    name: string;
    in: string;
    required?: boolean;
    schema?: JsonSchema;
    description?: string;
  }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema; example?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { example?: unknown }> }>;
}

interface OpenApiDocumentShape {
  info?: { title?: string; version?: string; description?: string };
  paths?: Record<string, Record<string, Operation>>;
  tags?: Array<{ name: string }>;
}

/** Longest example printed inline; longer ones are cut (the full one is in /openapi.json). */
const EXAMPLE_CHARS_MAX = 600;

export function buildLlmsTxt(document: JsonSchema, tools: readonly ToolSummary[]): string {
  const { info = {}, paths = {}, tags = [] } = document as OpenApiDocumentShape;
  const sections = [
    `# ${info.title ?? 'API'}`,
    `> ${info.description ?? ''}`,
    conventions(info.version ?? ''),
    ...endpointSections(
      paths,
      tags.map((tag) => tag.name),
    ),
    mcpSection(tools),
  ];
  return `${sections.join('\n\n')}\n`;
}

function conventions(version: string): string {
  return [
    '## Conventions',
    '',
    `- Version ${version}. Machine-readable: GET /openapi.json (OpenAPI 3.1). People: GET /docs. This file: GET /llms.txt.`,
    '- JSON in, JSON out. Errors: `{"error": "<snake_case_code>", "message": "..."}` with the HTTP status listed per endpoint.',
    '- Auth: `Authorization: Bearer <api_key>`; the api_key is returned once by POST /api/v1/auth/register. Operator routes take the ADMIN_API_KEY.',
    '- Money: USD as a JSON number or a decimal string, at most 6 decimal places. Negative, NaN or too precise amounts: 400 invalid_amount.',
    '- Writes accept `Idempotency-Key` (<= 255 chars): a retry with the same key and body returns the first answer; with another body 422 idempotency_key_reused.',
    '- 503 service_unavailable: a dependency is down; `write_may_have_happened` says whether to retry with the same Idempotency-Key.',
    '- Every answer carries `X-Request-Id` (yours if you sent a sane one): quote it when reporting a problem.',
  ].join('\n');
}

/** Endpoints grouped by tag, in the document's tag order (accounts first, system last). */
function endpointSections(paths: Record<string, Record<string, Operation>>, tagOrder: string[]): string[] {
  const byTag = new Map<string, string[]>(tagOrder.map((tag) => [tag, []]));
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const tag = operation.tags?.[0] ?? 'other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), endpoint(method.toUpperCase(), path, operation)]);
    }
  }
  return [...byTag]
    .filter(([, endpoints]) => endpoints.length > 0)
    .map(([tag, endpoints]) => [`## ${tag}`, ...endpoints].join('\n\n'));
}

function endpoint(method: string, path: string, operation: Operation): string {
  const lines = [`### ${method} ${path}`, '', operation.summary ?? ''];
  if (operation.description) lines.push('', operation.description);
  lines.push('', `Auth: ${authText(operation.security)}.`);
  const parameters = operation.parameters ?? [];
  const query = parameters.filter((parameter) => parameter.in === 'query');
  if (query.length > 0)
    lines.push(`Query: ${query.map((p) => fieldText(p.name, p.schema ?? {}, !!p.required)).join('; ')}.`);
  if (parameters.some((parameter) => parameter.name === 'Idempotency-Key'))
    lines.push('Accepts Idempotency-Key.');
  const body = operation.requestBody?.content?.['application/json']?.schema;
  if (body) lines.push(`Body (JSON): ${bodyText(body)}.`);
  lines.push(...responseLines(operation.responses ?? {}));
  return lines.join('\n');
}

function authText(security: Operation['security']): string {
  const schemes = (security ?? []).map((requirement) => Object.keys(requirement)[0] ?? 'none');
  if (schemes.length === 0) return 'none';
  if (schemes.includes('adminKey')) return 'operator key (Bearer ADMIN_API_KEY)';
  if (schemes.includes('none')) return 'optional agent key (Bearer api_key) — more fields with it';
  return 'agent key (Bearer api_key)';
}

function bodyText(schema: JsonSchema): string {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const fields = Object.entries(properties).map(([name, property]) =>
    fieldText(name, property, required.has(name)),
  );
  return fields.length > 0 ? fields.join('; ') : '{}';
}

function fieldText(name: string, schema: JsonSchema, required: boolean): string {
  const parts = [typeText(schema), required ? 'required' : 'optional'];
  const description = typeof schema.description === 'string' ? ` — ${schema.description}` : '';
  return `\`${name}\` (${parts.join(', ')})${description}`;
}

function typeText(schema: JsonSchema): string {
  if (Array.isArray(schema.enum))
    return `one of ${schema.enum.map((value) => JSON.stringify(value)).join('|')}`;
  if (Array.isArray(schema.type)) return schema.type.join('|');
  if (typeof schema.type === 'string') return schema.type;
  const variants = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(variants)) return variants.map(typeText).join('|');
  return 'any';
}

function responseLines(responses: NonNullable<Operation['responses']>): string[] {
  const lines: string[] = [];
  const errors: string[] = [];
  for (const [status, response] of Object.entries(responses)) {
    if (Number(status) >= 400) {
      errors.push(`${status} ${response.description ?? ''}`);
      continue;
    }
    lines.push(`Answer ${status}: ${response.description ?? ''}`);
    const example = Object.values(response.content ?? {})[0]?.example;
    if (example !== undefined) lines.push(`Example: \`${exampleText(example)}\``);
  }
  if (errors.length > 0) lines.push(`Errors: ${errors.join('; ')}.`);
  return lines;
}

function exampleText(example: unknown): string {
  const text = JSON.stringify(example);
  return text.length > EXAMPLE_CHARS_MAX ? `${text.slice(0, EXAMPLE_CHARS_MAX)}…` : text;
}

function mcpSection(tools: readonly ToolSummary[]): string {
  return [
    '## MCP',
    '',
    'Model Context Protocol over streamable HTTP at POST /mcp (stateless; client config `{"type": "streamable-http", "url": "<this host>/mcp"}`).',
    'The API key comes from the Authorization header or a `casino_api_key` argument; results are the JSON of the matching HTTP route, failures are tool errors carrying `{error, message}`.',
    '',
    ...tools.map((tool) => `- \`${tool.name}\`: ${tool.description}`),
  ].join('\n');
}
