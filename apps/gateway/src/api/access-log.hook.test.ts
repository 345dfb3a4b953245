import { Writable } from 'node:stream';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { currentRequestId, REQUEST_ID_HEADER, requestIdHeaders } from '@pf/messaging';
import { installAccessLog, requestIdFor } from './access-log.hook.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A pino logger writing its JSON lines into `lines`, with the request id mixin of the services. */
function memoryLogger(lines: Array<Record<string, unknown>>) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return pino(
    {
      level: 'info',
      mixin: () => {
        const requestId = currentRequestId();
        return requestId ? { request_id: requestId } : {};
      },
    },
    sink,
  );
}

describe('the access log and the request id (issue #21, logs)', () => {
  let fastify: FastifyInstance;
  const lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    fastify = new FastifyAdapter().getInstance() as unknown as FastifyInstance;
    installAccessLog(fastify, memoryLogger(lines));
    fastify.post('/escrow/release/:id', async (request) => {
      // What AgentAuthGuard does once the key is checked.
      (request as unknown as { agentId: string }).agentId = 'ag_0123456789ab';
      // Awaiting something first: the id must survive an async hop, as it does across a NATS call.
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { seen: currentRequestId(), nats: requestIdHeaders()?.get(REQUEST_ID_HEADER) };
    });
    fastify.get('/health/live', async () => ({ status: 'ok' }));
    await fastify.ready();
  });
  afterAll(async () => {
    await fastify.close();
  });
  beforeEach(() => {
    lines.length = 0;
  });

  it('keeps a sane incoming X-Request-Id, answers it and hands it to the handler and to NATS headers', async () => {
    const response = await fastify.inject({
      method: 'POST',
      url: '/escrow/release/esc_00112233aabbccdd?secret=1',
      headers: { 'x-request-id': 'trace-42.a:b_c', authorization: 'Bearer sk_live_' + 'a'.repeat(48) },
      payload: { amount_usd: 5 },
    });
    expect(response.headers['x-request-id']).toBe('trace-42.a:b_c');
    expect(response.json()).toEqual({ seen: 'trace-42.a:b_c', nats: 'trace-42.a:b_c' });
  });

  it('writes one info line per request: method, route template, status, latency, agent, request id', async () => {
    await fastify.inject({
      method: 'POST',
      url: '/escrow/release/esc_00112233aabbccdd?secret=1',
      headers: { 'x-request-id': 'trace-43', authorization: 'Bearer sk_live_' + 'b'.repeat(48) },
      payload: { amount_usd: 5 },
    });
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({
      level: 30,
      msg: 'request',
      method: 'POST',
      route: '/escrow/release/:id',
      status: 200,
      agent_id: 'ag_0123456789ab',
      request_id: 'trace-43',
    });
    expect(typeof line.latency_ms).toBe('number');
    // Never the key, the URL's ids or query, or the body.
    const text = JSON.stringify(line);
    expect(text).not.toMatch(/sk_live_|secret|esc_00112233aabbccdd|amount_usd/);
  });

  it('makes an id when none or an insane one is sent, and logs 404s without a route', async () => {
    const response = await fastify.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'evil\nlevel=50' },
    });
    expect(response.statusCode).toBe(404);
    expect(response.headers['x-request-id']).toMatch(UUID);
    expect(lines).toEqual([
      expect.objectContaining({ route: null, status: 404, request_id: response.headers['x-request-id'] }),
    ]);
  });

  it('keeps health probes out of the info log', async () => {
    await fastify.inject({ method: 'GET', url: '/health/live' });
    expect(lines).toEqual([]);
  });

  it('accepts only short printable ids from outside', () => {
    expect(requestIdFor('abc-123')).toBe('abc-123');
    expect(requestIdFor('x'.repeat(129))).toMatch(UUID);
    expect(requestIdFor('a b')).toMatch(UUID);
    expect(requestIdFor(['a', 'b'])).toMatch(UUID);
    expect(requestIdFor(undefined)).toMatch(UUID);
  });
});
