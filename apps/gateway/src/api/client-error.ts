import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ErrorCode, type ErrorBody } from '@pf/contracts';

/** Node's own parser codes that are not a plain 400 (llhttp's HPE_* and Node's timeouts). */
const STATUS_BY_PARSER_CODE: Readonly<Record<string, [number, string, string]>> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'request headers are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request was not received in time'],
};

/**
 * Requests Node's HTTP parser refuses (a bad Content-Length, a header without a colon, a request
 * line that is not HTTP) never reach Fastify's routes or Nest's filter; Fastify's own handler
 * answers `{"error":"Bad Request"}`. This one answers in the API's shape, then closes the
 * connection, since the stream cannot be trusted past a parse error.
 */
export function installClientErrorHandler(fastify: FastifyInstance): void {
  const server = fastify.server;
  server.removeAllListeners('clientError');
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // A reset connection or one already answered has no one to read an answer.
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy(error);
      return;
    }
    const [status, reason, message] = STATUS_BY_PARSER_CODE[error.code ?? ''] ?? [
      400,
      'Bad Request',
      'malformed HTTP request',
    ];
    const body: ErrorBody = { error: ErrorCode.invalidRequest, message };
    const text = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  });
}
