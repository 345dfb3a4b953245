import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { RequestMethod } from '@nestjs/common';
import { z } from 'zod';
import { httpStatusByErrorCode, mandateErrors } from '@pf/contracts';

/**
 * `/openapi.json`, built from two sources that cannot drift apart unnoticed:
 * - the routes themselves, read from the controllers' Nest decorators (so a route without a
 *   description still appears, marked undocumented, and a unit test fails);
 * - one `RouteDoc` per route (openapi-routes.ts) naming the zod schema its controller validates
 *   the body or query with; the JSON Schema is generated from that very schema.
 */

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';
export type RouteAuth = 'none' | 'agent' | 'agent_optional' | 'admin';
export type JsonSchema = Record<string, unknown>;

export interface RouteDoc {
  method: HttpMethod;
  /** OpenAPI form: `/escrow/{id}`. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  auth: RouteAuth;
  /** The schema the controller validates the JSON body with. */
  body?: z.ZodObject;
  /**
   * Documentation for body fields the schema leaves open (`z.unknown()`, checked by hand in the
   * controller so each gets its own error code), or the whole body when the controller keeps
   * its schema private. A field named here must exist in `body` when `body` is given.
   */
  bodyFields?: Record<string, z.ZodType>;
  bodyExample?: Record<string, unknown>;
  /** The schema the controller validates the query string with. */
  query?: z.ZodObject;
  /** Writes that take an `Idempotency-Key` header. */
  idempotent?: boolean;
  response: { status: number; description: string; example?: unknown; contentType?: string };
  /** Error codes this route answers with (statuses come from the one error table). */
  errors?: readonly string[];
}

export interface RouteKey {
  method: HttpMethod;
  path: string;
}

const METHOD_NAMES: Partial<Record<RequestMethod, HttpMethod>> = {
  [RequestMethod.GET]: 'GET',
  [RequestMethod.POST]: 'POST',
  [RequestMethod.PUT]: 'PUT',
  [RequestMethod.PATCH]: 'PATCH',
  [RequestMethod.DELETE]: 'DELETE',
  [RequestMethod.HEAD]: 'HEAD',
  [RequestMethod.OPTIONS]: 'OPTIONS',
};

/** Every route the controllers declare, in OpenAPI path form, from their Nest decorators. */
export function routesOfControllers(
  controllers: ReadonlyArray<abstract new (...args: never[]) => unknown>,
): RouteKey[] {
  const routes: RouteKey[] = [];
  for (const controller of controllers) {
    const prefixes = asList(Reflect.getMetadata(PATH_METADATA, controller));
    const prototype = controller.prototype as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const handler = prototype[name];
      if (name === 'constructor' || typeof handler !== 'function') continue;
      const method = METHOD_NAMES[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
      if (!method || paths === undefined) continue;
      for (const prefix of prefixes)
        for (const path of asList(paths)) routes.push({ method, path: openApiPath(prefix, path) });
    }
  }
  return routes;
}

function asList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return [value === undefined ? '' : String(value)];
}

/** `('escrow', 'complete/:id')` → `/escrow/complete/{id}`. */
export function openApiPath(prefix: string, path: string): string {
  const joined = [prefix, path]
    .flatMap((part) => part.split('/'))
    .filter((segment) => segment !== '')
    .map((segment) => (segment.startsWith(':') ? `{${segment.slice(1)}}` : segment))
    .join('/');
  return `/${joined}`;
}

export const routeKey = (route: RouteKey): string => `${route.method} ${route.path}`;

export interface OpenApiOptions {
  version: string;
  routes: readonly RouteKey[];
  docs: readonly RouteDoc[];
}

/** The OpenAPI 3.1 document (JSON Schema 2020-12 inside) for the given routes. */
export function buildOpenApiDocument(options: OpenApiOptions): JsonSchema {
  const docsByKey = new Map(options.docs.map((doc) => [routeKey(doc), doc]));
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = [...options.routes].sort((a, b) =>
    a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path),
  );
  for (const route of sorted) {
    const doc = docsByKey.get(routeKey(route)) ?? undocumented(route);
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operation(doc);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Agent marketplace API',
      version: options.version,
      description:
        'Accounts, a $1 faucet and escrow for AI agents, on one port. JSON in, JSON out; errors are {error, message}. ' +
        'Money is USD as JSON numbers or decimal strings, at most 6 decimal places. MCP tools are served at POST /mcp.',
    },
    tags: [...new Set(options.docs.map((doc) => doc.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        agentKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'The api_key returned once by POST /api/v1/auth/register (sk_live_…).',
        },
        adminKey: { type: 'http', scheme: 'bearer', description: 'The operator key (ADMIN_API_KEY).' },
      },
      schemas: { Error: errorSchema() },
    },
  };
}

function undocumented(route: RouteKey): RouteDoc {
  return {
    ...route,
    tag: 'undocumented',
    summary: 'Undocumented route',
    auth: 'none',
    response: { status: 200, description: 'OK' },
  };
}

function operation(doc: RouteDoc): Record<string, unknown> {
  const parameters = [...pathParameters(doc.path), ...queryParameters(doc.query), ...headerParameters(doc)];
  const body = requestBodySchema(doc);
  return {
    operationId: operationId(doc),
    tags: [doc.tag],
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    ...security(doc.auth),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body
      ? {
          requestBody: {
            required: doc.method !== 'POST' || Array.isArray(body.required),
            content: {
              'application/json': { schema: body, ...(doc.bodyExample ? { example: doc.bodyExample } : {}) },
            },
          },
        }
      : {}),
    responses: responses(doc),
  };
}

function operationId(doc: RouteDoc): string {
  const words = doc.path.split('/').filter((segment) => segment !== '' && !segment.startsWith('{'));
  return [doc.method.toLowerCase(), ...words].join('_').replace(/[^A-Za-z0-9_]/g, '_');
}

function security(auth: RouteAuth): Record<string, unknown> {
  if (auth === 'agent') return { security: [{ agentKey: [] }] };
  if (auth === 'admin') return { security: [{ adminKey: [] }] };
  // Optional: either no credentials or the agent's key.
  if (auth === 'agent_optional') return { security: [{}, { agentKey: [] }] };
  return { security: [] };
}

function pathParameters(path: string): JsonSchema[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((match) => ({
    name: match[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
}

function queryParameters(query: z.ZodObject | undefined): JsonSchema[] {
  if (!query) return [];
  const schema = toJsonSchema(query);
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: property,
  }));
}

function headerParameters(doc: RouteDoc): JsonSchema[] {
  if (!doc.idempotent) return [];
  return [
    {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description:
        "Retry-safe writes, scoped to the caller's API key: the same key with the same body returns the first response; with another body 422 idempotency_key_reused; " +
        'while the first is still running 409 request_in_progress. Without an API key (anonymous writes such as register) the key must have at least 32 characters, ' +
        '8 of them different (a random UUID passes), else 400 weak_idempotency_key.',
      schema: { type: 'string', minLength: 1, maxLength: 255 },
    },
  ];
}

/** The body's JSON Schema: generated from the controller's schema, open fields filled in from the docs. */
export function requestBodySchema(
  doc: Pick<RouteDoc, 'body' | 'bodyFields' | 'method' | 'path'>,
): JsonSchema | undefined {
  if (!doc.body && !doc.bodyFields) return undefined;
  const schema: JsonSchema = doc.body ? toJsonSchema(doc.body) : { type: 'object', properties: {} };
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  for (const [name, field] of Object.entries(doc.bodyFields ?? {})) {
    if (doc.body && !(name in properties)) {
      throw new Error(
        `${doc.method} ${doc.path}: documented body field "${name}" is not in the controller's schema`,
      );
    }
    properties[name] = toJsonSchema(field);
    if (field.safeParse(undefined).success) required.delete(name);
    else required.add(name);
  }
  schema.properties = properties;
  if (required.size > 0) schema.required = [...required];
  else delete schema.required;
  return schema;
}

function toJsonSchema(schema: z.ZodType): JsonSchema {
  const generated = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete generated.$schema;
  return generated;
}

function responses(doc: RouteDoc): Record<string, unknown> {
  const { response } = doc;
  const contentType = response.contentType ?? 'application/json';
  const success =
    response.example === undefined
      ? { description: response.description }
      : {
          description: response.description,
          content: {
            [contentType]: { schema: schemaOfExample(response.example), example: response.example },
          },
        };
  const result: Record<string, unknown> = { [String(response.status)]: success };
  for (const [status, codes] of errorsByStatus(doc)) {
    result[String(status)] = {
      description: codes.join(', '),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return result;
}

/** Every route can also fail with these; listed once per route so the docs are complete. */
const COMMON_ERRORS = ['rate_limited', 'service_unavailable'] as const;

function errorsByStatus(doc: RouteDoc): Map<number, string[]> {
  const codes = new Set<string>([...(doc.errors ?? []), ...COMMON_ERRORS]);
  if (doc.auth === 'agent' || doc.auth === 'admin' || doc.auth === 'agent_optional')
    codes.add('unauthorized');
  // An agent key may be a sub-key (ADR 0019): authentication itself refuses one that expired or
  // was revoked, whatever the route.
  if (doc.auth === 'agent' || doc.auth === 'agent_optional')
    [mandateErrors.keyExpired, mandateErrors.keyRevoked].forEach((code) => codes.add(code));
  if (doc.body || doc.bodyFields || doc.query) codes.add('invalid_request');
  if (doc.idempotent)
    ['invalid_request', 'idempotency_key_reused', 'request_in_progress'].forEach((code) => codes.add(code));
  // Without an API key the Idempotency-Key alone guards the stored answer (ADR 0009).
  if (doc.idempotent && doc.auth !== 'agent' && doc.auth !== 'admin') codes.add('weak_idempotency_key');
  const byStatus = new Map<number, string[]>();
  for (const code of codes) {
    const status = httpStatusByErrorCode[code] ?? 500;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

function errorSchema(): JsonSchema {
  return {
    type: 'object',
    required: ['error', 'message'],
    properties: {
      error: { type: 'string', description: 'A snake_case code, e.g. insufficient_balance.' },
      message: { type: 'string', description: 'What went wrong, for a human.' },
      suggestion: { type: 'string' },
      write_may_have_happened: {
        type: 'boolean',
        description:
          'On 503 service_unavailable: whether the request may have taken effect; either way, retry with the same Idempotency-Key.',
      },
    },
    additionalProperties: true,
  };
}

/** A JSON Schema describing the shape of an example value (documented examples are real answers). */
export function schemaOfExample(value: unknown): JsonSchema {
  if (value === null) return {};
  if (Array.isArray(value))
    return { type: 'array', items: value.length > 0 ? schemaOfExample(value[0]) : {} };
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return {
      type: 'object',
      properties: Object.fromEntries(entries.map(([key, item]) => [key, schemaOfExample(item)])),
    };
  }
  if (typeof value === 'number') return { type: 'number' };
  return { type: typeof value };
}
