import 'reflect-metadata';
import { MODULE_METADATA } from '@nestjs/common/constants.js';
import { HealthController } from '@pf/platform';
import { GatewayModule } from '../gateway.module.js';
import { ROUTE_DOCS } from './openapi-routes.js';
import {
  buildOpenApiDocument,
  openApiPath,
  requestBodySchema,
  routeKey,
  routesOfControllers,
  schemaOfExample,
} from './openapi.js';

const controllers = [
  ...(Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, GatewayModule) as Array<new () => unknown>),
  HealthController,
];
const routes = routesOfControllers(controllers);

describe('the OpenAPI document', () => {
  it('describes every route the controllers declare, and nothing else', () => {
    const documented = new Set(ROUTE_DOCS.map(routeKey));
    const declared = new Set(routes.map(routeKey));
    expect([...declared].filter((key) => !documented.has(key))).toEqual([]);
    expect([...documented].filter((key) => !declared.has(key))).toEqual([]);
    expect(documented.size).toBe(ROUTE_DOCS.length);
  });

  it('reads paths from the decorators in OpenAPI form', () => {
    expect(openApiPath('escrow', 'complete/:id')).toBe('/escrow/complete/{id}');
    expect(openApiPath('', 'openapi.json')).toBe('/openapi.json');
    expect(openApiPath('health', '')).toBe('/health');
    expect(routes.map(routeKey)).toEqual(
      expect.arrayContaining([
        'POST /escrow/release/{id}',
        'GET /health/live',
        'POST /admin/escrow/{id}/resolve',
      ]),
    );
  });

  it('generates request bodies from the controllers\u2019 own schemas, with open fields documented', () => {
    const create = ROUTE_DOCS.find((doc) => routeKey(doc) === 'POST /escrow/create')!;
    const schema = requestBodySchema(create)!;
    expect(schema.required).toEqual(['amount_usd', 'description', 'counterparty_agent_id']);
    expect((schema.properties as Record<string, { type?: unknown }>).amount_usd!.type).toEqual([
      'number',
      'string',
    ]);
    const register = requestBodySchema(
      ROUTE_DOCS.find((doc) => routeKey(doc) === 'POST /api/v1/auth/register')!,
    )!;
    expect(Object.keys(register.properties as object)).toEqual(['referral_code', 'agent_name']);
    expect(register.required).toBeUndefined();
  });

  it('refuses a documented field the controller does not read (a renamed field is caught)', () => {
    const create = ROUTE_DOCS.find((doc) => routeKey(doc) === 'POST /escrow/create')!;
    expect(() =>
      requestBodySchema({ ...create, bodyFields: { amount: create.bodyFields!.amount_usd! } }),
    ).toThrow(/"amount" is not in the controller's schema/);
  });

  it('builds a JSON document with security, parameters and error responses', () => {
    const document = buildOpenApiDocument({ version: '1.2.3', routes, docs: ROUTE_DOCS }) as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
    };
    expect(JSON.parse(JSON.stringify(document))).toEqual(document);
    const release = document.paths['/escrow/release/{id}']!.post!;
    expect(release.security).toEqual([{ agentKey: [] }]);
    expect(release.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'id', in: 'path' }),
        expect.objectContaining({ name: 'Idempotency-Key' }),
      ]),
    );
    expect(Object.keys(release.responses as object)).toEqual([
      '200',
      '400',
      '401',
      '403',
      '404',
      '409',
      '422',
      '429',
      '503',
    ]);
    const errors400 = (route: Record<string, unknown>) =>
      (route.responses as Record<string, { description: string }>)['400']!.description;
    expect(errors400(document.paths['/api/v1/auth/register']!.post!)).toContain('weak_idempotency_key');
    expect(errors400(release)).not.toContain('weak_idempotency_key');
    const ledger = document.paths['/api/v1/auth/ledger']!.get!;
    expect(ledger.parameters).toEqual([
      expect.objectContaining({ name: 'limit', in: 'query', required: false }),
      expect.objectContaining({ name: 'cursor', in: 'query', required: false }),
    ]);
  });

  it('lists the mandate refusals on the routes a sub-key can be refused on (ADR 0019)', () => {
    const document = buildOpenApiDocument({ version: '1.2.3', routes, docs: ROUTE_DOCS }) as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    const codes = (path: string, status: number) =>
      (document.paths[path]!.post!.responses[String(status)]?.description ?? '').split(', ');
    const limits = ['mandate_exceeded', 'mandate_payee_not_allowed', 'mandate_action_not_allowed'];
    // Money that leaves the caller's balance: every mandate check applies.
    for (const path of ['/escrow/create', '/api/v1/pay'])
      expect(codes(path, 403)).toEqual(expect.arrayContaining(limits));
    // Held money moved on, or a sub-key refused outright: only the action check applies.
    for (const path of [
      '/escrow/release/{id}',
      '/escrow/complete/{id}',
      '/jobs/{id}/award',
      '/jobs/{id}/release',
    ]) {
      expect(codes(path, 403)).toContain('mandate_action_not_allowed');
      expect(codes(path, 403)).not.toContain('mandate_exceeded');
    }
    // Authentication refuses an expired or revoked sub-key on any route an agent key opens.
    for (const path of ['/escrow/create', '/escrow/release/{id}', '/jobs/{id}/award'])
      expect(codes(path, 401)).toEqual(
        expect.arrayContaining(['unauthorized', 'key_expired', 'key_revoked']),
      );
    expect(codes('/faucet/claim', 401)).not.toContain('key_expired');
  });

  it('lists a route without docs as undocumented rather than leaving it out', () => {
    const document = buildOpenApiDocument({
      version: '1',
      routes: [{ method: 'GET', path: '/new' }],
      docs: [],
    }) as { paths: Record<string, Record<string, { tags: string[] }>> };
    expect(document.paths['/new']!.get!.tags).toEqual(['undocumented']);
  });

  it('derives response schemas from the examples', () => {
    expect(schemaOfExample({ a: 1.5, b: ['x'], c: null, d: { e: true } })).toEqual({
      type: 'object',
      properties: {
        a: { type: 'number' },
        b: { type: 'array', items: { type: 'string' } },
        c: {},
        d: { type: 'object', properties: { e: { type: 'boolean' } } },
      },
    });
  });
});
