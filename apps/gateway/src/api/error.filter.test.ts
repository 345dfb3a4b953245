import type { ArgumentsHost } from '@nestjs/common';
import { NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import pino from 'pino';
import { DomainError } from '@pf/contracts';
import { HttpErrorFilter } from './error.filter.js';

/** What the filter sends for a thrown value: status, content type and body. */
function answer(exception: unknown): { status: number; contentType: string; body: Record<string, unknown> } {
  const sent = { status: 0, contentType: '', body: {} as Record<string, unknown> };
  const reply = {
    status(code: number) {
      sent.status = code;
      return reply;
    },
    header(name: string, value: string) {
      if (name === 'content-type') sent.contentType = value;
      return reply;
    },
    send(body: Record<string, unknown>) {
      sent.body = body;
      return reply;
    },
  };
  const host = { switchToHttp: () => ({ getResponse: () => reply }) } as unknown as ArgumentsHost;
  new HttpErrorFilter(pino({ level: 'silent' })).catch(exception, host);
  return sent;
}

describe('HttpErrorFilter', () => {
  it.each([
    ['a string', 'boom'],
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a plain Error with a stack', new Error('secret detail at /srv/app.js:1')],
    ['an object claiming a 5xx', { statusCode: 502, message: 'upstream' }],
  ])('answers %s thrown as 500 internal_error without details', (_name, thrown) => {
    const sent = answer(thrown);
    expect(sent).toEqual({
      status: 500,
      contentType: 'application/json; charset=utf-8',
      body: { error: 'internal_error', message: 'internal error' },
    });
  });

  it('maps a domain error to its status, keeping its details but never letting them replace the code', () => {
    const sent = answer(
      new DomainError('insufficient_balance', 'not enough', { balance_usd: 1, error: 'spoofed' }),
    );
    expect(sent.status).toBe(402);
    expect(sent.body).toEqual({ error: 'insufficient_balance', message: 'not enough', balance_usd: 1 });
  });

  it.each([
    [{ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }, 413, 'request body is too large'],
    [
      { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' },
      415,
      'content type must be application/json',
    ],
    [{ statusCode: 400, code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }, 400, 'request body is empty'],
    [{ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }, 400, 'request body is not valid JSON'],
    [{ statusCode: 400, code: 'FST_ERR_BAD_URL' }, 400, 'malformed request'],
    [{ statusCode: 404, code: 'FST_ERR_NOT_FOUND' }, 404, 'no such route'],
  ])('maps Fastify error %o to %i', (thrown, status, message) => {
    const sent = answer(thrown);
    expect(sent.status).toBe(status);
    expect(sent.body).toEqual({ error: status === 404 ? 'not_found' : 'invalid_request', message });
  });

  it('maps Nest HTTP exceptions', () => {
    expect(answer(new NotFoundException()).body).toEqual({ error: 'not_found', message: 'no such route' });
    expect(answer(new PayloadTooLargeException()).status).toBe(413);
  });
});

describe('HttpErrorFilter and dependency failures', () => {
  it('answers a Postgres connection failure as 503 service_unavailable that may have written, never 500', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const sent = answer(refused);
    expect(sent.status).toBe(503);
    expect(sent.body).toMatchObject({
      error: 'service_unavailable',
      write_may_have_happened: true,
      suggestion: expect.stringContaining('Idempotency-Key'),
    });
    expect(JSON.stringify(sent.body)).not.toContain('5432');
  });

  it('keeps a service saying nothing was written', () => {
    const sent = answer(
      new DomainError('service_unavailable', 'casino service is unavailable: no instance is running', {
        service: 'casino',
        write_may_have_happened: false,
      }),
    );
    expect(sent.status).toBe(503);
    expect(sent.body).toMatchObject({
      error: 'service_unavailable',
      service: 'casino',
      write_may_have_happened: false,
    });
  });
});
