import type { ServerResponse } from 'node:http';
import { Controller, Get, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { DomainError, ErrorCode, type EventEnvelope } from '@pf/contracts';
import { CONFIG, LOGGER } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { AgentNotices } from '../infrastructure/agent-notices.js';
import { EscrowEventFeed, type EventSink } from '../infrastructure/escrow-event-feed.js';
import { StreamTokens } from '../infrastructure/stream-tokens.js';
import { AgentAuthGuard, bearerToken, type AuthenticatedRequest } from './auth.guard.js';
import { escrowRestEvents, toRestEvent, type RestEventMappers } from './rest-events.js';

/** How long a client may leave a frame unread before it is dropped as too slow. */
const SLOW_CLIENT_TIMEOUT_MS = 30_000;
/** What EventSource clients wait before reconnecting after the stream ends. */
const RECONNECT_DELAY_MS = 1_000;

/**
 * `GET /escrow/events/stream` (API.md): Server-Sent Events on the caller's escrows. Everything
 * that can fail (auth, limits, a bad Last-Event-ID, JetStream down) fails before the stream
 * starts, as an ordinary JSON error; after that, an ended stream is resumed by the client with
 * `Last-Event-ID`.
 */
@Controller('escrow/events')
export class EventsStreamController {
  constructor(
    private readonly feed: EscrowEventFeed,
    private readonly auth: AgentAuthGuard,
    private readonly tokens: StreamTokens,
    private readonly notices: AgentNotices,
    @Inject(CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * A token that opens the caller's stream for EVENT_STREAM_TOKEN_TTL_SECONDS, for clients that
   * cannot send headers (browsers' EventSource): `new EventSource(stream_url)`. It opens nothing
   * else, is never stored (it is signed) and never recorded under an Idempotency-Key.
   */
  @Post('stream-token')
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  issueToken(@Req() request: AuthenticatedRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const { token, expiresAtMs } = this.tokens.issue(request.agentId!);
    void reply.header('cache-control', 'no-store');
    return {
      token,
      expires_at: new Date(expiresAtMs).toISOString(),
      expires_in_seconds: this.config.EVENT_STREAM_TOKEN_TTL_SECONDS,
      stream_url: `/escrow/events/stream?token=${token}`,
    };
  }

  @Get('stream')
  async stream(@Req() request: AuthenticatedRequest, @Res() reply: FastifyReply): Promise<void> {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const agentId = await this.streamCaller(request, query.token);
    const lastEventId = parseLastEventId(
      request.headers['last-event-id'] ?? queryString(query.last_event_id),
    );
    const subscription = await this.feed.subscribe(agentId, lastEventId);
    reply.hijack();
    const sink = new SseWriter(reply.raw, this.config.EVENT_STREAM_HEARTBEAT_MS, escrowRestEvents);
    sink.open(reply.getHeaders());
    const stopNotices = this.notices.listen(agentId, (notice) => sink.notice(notice.type, notice.data));
    sink.onClose(() => subscription.close());
    subscription
      .pump(sink)
      .catch((error: unknown) =>
        this.logger.warn({ err: error, agentId: subscription.agentId }, 'event stream ended'),
      )
      .finally(() => {
        stopNotices();
        sink.end();
      });
  }

  /** The API key in Authorization, or else a stream token in `?token=` (EventSource). */
  private async streamCaller(request: AuthenticatedRequest, token: unknown): Promise<string> {
    if (bearerToken(request) !== undefined || token === undefined)
      return this.auth.authenticate(bearerToken(request));
    if (typeof token !== 'string') throw new DomainError(ErrorCode.unauthorized, 'token must appear once');
    return this.tokens.verify(token);
  }
}

function queryString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** `Last-Event-ID`: absent, or a stream sequence this endpoint sent (a non-negative integer). */
export function parseLastEventId(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  const id = Number(trimmed);
  if (!/^[0-9]{1,15}$/.test(trimmed) || !Number.isSafeInteger(id)) {
    throw new DomainError(ErrorCode.invalidRequest, 'Last-Event-ID must be an id received from this stream');
  }
  return id;
}

/** Writes SSE frames in the REST shape to the raw response, with heartbeats and backpressure. */
export class SseWriter implements EventSink {
  private heartbeat?: NodeJS.Timeout;
  private ended = false;

  constructor(
    private readonly raw: ServerResponse,
    private readonly heartbeatMs: number,
    /** The REST mappers of the feed, or a function that makes the whole wire event (public feeds). */
    private readonly present: RestEventMappers | ((envelope: EventEnvelope) => unknown),
  ) {}

  open(headers: Record<string, unknown>): void {
    this.raw.writeHead(200, {
      ...(headers as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    this.raw.write(`retry: ${RECONNECT_DELAY_MS}\n: connected\n\n`);
    this.heartbeat = setInterval(() => this.raw.write(': heartbeat\n\n'), this.heartbeatMs);
    this.heartbeat.unref();
  }

  onClose(listener: () => void): void {
    this.raw.once('close', () => {
      this.stopHeartbeat();
      listener();
    });
  }

  /** One message: `event: <type>` lets EventSource clients `addEventListener('released', …)`. */
  async send(id: number, envelope: EventEnvelope): Promise<void> {
    if (this.ended || this.raw.destroyed) return;
    const wire =
      typeof this.present === 'function' ? this.present(envelope) : toRestEvent(envelope, this.present);
    const data = JSON.stringify(wire);
    if (this.raw.write(`id: ${id}\nevent: ${envelope.type}\ndata: ${data}\n\n`)) return;
    await this.drained();
  }

  /**
   * A notice that is not an event of the log (a disabled webhook): no `id:` line, so the
   * client's Last-Event-ID, and with it resumption, is unchanged.
   */
  notice(type: string, data: Record<string, unknown>): void {
    if (this.ended || this.raw.destroyed) return;
    this.raw.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopHeartbeat();
    if (!this.raw.destroyed) this.raw.end();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
  }

  /** A client that stops reading is dropped rather than buffered without bound. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.raw.destroy();
        resolve();
      }, SLOW_CLIENT_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        this.raw.off('drain', done);
        this.raw.off('close', done);
        resolve();
      };
      this.raw.once('drain', done);
      this.raw.once('close', done);
    });
  }
}
