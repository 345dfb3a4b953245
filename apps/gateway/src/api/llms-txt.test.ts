import 'reflect-metadata';
import { MODULE_METADATA } from '@nestjs/common/constants.js';
import { HealthController } from '@pf/platform';
import { GatewayModule } from '../gateway.module.js';
import { JOB_MCP_TOOLS } from '../mcp/mcp-job-tools.js';
import { MCP_TOOLS } from '../mcp/mcp-tools.js';
import { agentCard, endpointIndex, landingPageHtml, prefersHtml, serviceIndex } from './discovery.js';
import { buildLlmsTxt } from './llms-txt.js';
import { ROUTE_DOCS } from './openapi-routes.js';
import { buildOpenApiDocument, routesOfControllers } from './openapi.js';

const controllers = [
  ...(Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, GatewayModule) as Array<new () => unknown>),
  HealthController,
];
const document = buildOpenApiDocument({
  version: '1.2.3',
  routes: routesOfControllers(controllers),
  docs: ROUTE_DOCS,
});
const tools = [...MCP_TOOLS, ...JOB_MCP_TOOLS];
const paths = document.paths as Record<
  string,
  Record<string, { responses: Record<string, { description: string }> }>
>;

describe('llms.txt, generated from the OpenAPI document (issue #21)', () => {
  const text = buildLlmsTxt(document, tools);

  it('has a heading per endpoint of the OpenAPI document, and no other', () => {
    const expected = Object.entries(paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `### ${method.toUpperCase()} ${path}`),
    );
    const headings = text.split('\n').filter((line) => line.startsWith('### '));
    expect(headings.sort()).toEqual(expected.sort());
    expect(headings).toEqual(
      expect.arrayContaining(['### POST /escrow/create', '### GET /llms.txt', '### POST /jobs']),
    );
  });

  it('names every error code the OpenAPI document lists, and every MCP tool', () => {
    const codes = new Set(
      Object.values(paths).flatMap((methods) =>
        Object.values(methods).flatMap((operation) =>
          Object.entries(operation.responses)
            .filter(([status]) => Number(status) >= 400)
            .flatMap(([, response]) => response.description.split(', ')),
        ),
      ),
    );
    expect(codes.size).toBeGreaterThan(20);
    for (const code of codes) expect(text).toContain(code);
    for (const tool of tools) expect(text).toContain(`- \`${tool.name}\`: `);
  });

  it('describes body fields with type and requiredness, auth and idempotency', () => {
    const create = text.slice(text.indexOf('### POST /escrow/create'));
    const section = create.slice(0, create.indexOf('\n### '));
    expect(section).toContain('Auth: agent key (Bearer api_key).');
    expect(section).toContain('Accepts Idempotency-Key.');
    expect(section).toMatch(/`amount_usd` \(number\|string, required\)/);
    expect(section).toMatch(/`timeout_hours` \([^)]*optional\)/);
    expect(section).toMatch(/Errors: 400 [^\n]*invalid_amount/);
  });

  it('is a pure function of the document: a tiny document gives exactly its text', () => {
    const tiny = buildLlmsTxt(
      {
        info: { title: 'T', version: '9', description: 'D' },
        paths: {
          '/x': {
            get: {
              tags: ['t'],
              summary: 'S',
              security: [],
              responses: {
                '200': { description: 'ok', content: { 'application/json': { example: { a: 1 } } } },
              },
            },
          },
        },
      },
      [{ name: 'tool', description: 'does' }],
    );
    expect(tiny).toContain('# T\n\n> D\n\n## Conventions');
    expect(tiny).toContain(
      '## t\n\n### GET /x\n\nS\n\nAuth: none.\nAnswer 200: ok\nExample: `{"a":1}`\n\n## MCP',
    );
    expect(tiny.endsWith('- `tool`: does\n')).toBe(true);
  });
});

describe('the service index, agent card and landing page', () => {
  it('answers the public services\u2019 index keys with every endpoint', () => {
    const index = serviceIndex(document, '1.2.3');
    expect(Object.keys(index)).toEqual(
      expect.arrayContaining(['service', 'version', 'endpoints', 'docs', 'auth']),
    );
    expect(Object.keys(index.endpoints as object)).toHaveLength(Object.keys(endpointIndex(document)).length);
    expect(index.endpoints).toMatchObject({
      'POST /escrow/create': expect.any(String),
      'GET /': expect.any(String),
    });
  });

  it('points the agent card at the MCP endpoint and lists the tools as skills', () => {
    const card = agentCard({ baseUrl: 'http://h:1', version: '1', description: 'd', tools });
    expect(card.mcp).toEqual({ transport: 'streamable-http', url: 'http://h:1/mcp' });
    expect((card.skills as unknown[]).length).toBe(tools.length);
  });

  it('serves HTML only to clients that ask for it before JSON', () => {
    expect(prefersHtml('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')).toBe(true);
    expect(prefersHtml('*/*')).toBe(false);
    expect(prefersHtml(undefined)).toBe(false);
    expect(prefersHtml('application/json, text/html')).toBe(false);
    const html = landingPageHtml('1.2.3<script>');
    expect(html).toContain('href="/docs"');
    expect(html).toContain('href="/dashboard"');
    expect(html).toContain('href="/llms.txt"');
    expect(html).toContain('npm start');
    expect(html).not.toContain('<script>');
  });
});
