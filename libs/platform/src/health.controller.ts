import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { DataSource } from 'typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import { pingDatabase } from './database.js';
import { contractEventStreams } from '@pf/messaging';
import { deadLetterStream } from '@pf/contracts';
import { pingJetStream, pingNats } from './nats.js';
import { DATA_SOURCE, NATS_CONNECTION, SERVICE_CONTEXT } from './tokens.js';
import type { ServiceContext } from './service-context.js';

const JETSTREAM_PROBE_INTERVAL_MS = 1_000;

export interface HealthReport {
  status: 'ok' | 'unavailable';
  service: string;
  version: string;
  instance: string;
  uptime_ms: number;
  checks: { postgres: 'up' | 'down'; nats: 'up' | 'down'; jetstream: 'up' | 'down' };
}

/**
 * `GET /health`: ready only when Postgres, NATS and the JetStream streams (every contract event
 * stream and the dead-letter stream) answer within the timeout (200, or 503 naming what is
 * down). `GET /health/live`: the process is alive.
 */
@Controller('health')
export class HealthController {
  /** The last JetStream probe: polled at 10 Hz by orchestrators, it asks the broker at most once per interval. */
  private jetstreamProbe?: { atMs: number; result: Promise<boolean> };

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    @Inject(DATA_SOURCE) private readonly dataSource: DataSource,
    @Inject(NATS_CONNECTION) private readonly nats: NatsConnection,
  ) {}

  @Get()
  async readiness(@Res() reply: FastifyReply): Promise<void> {
    const timeoutMs = this.context.config.HEALTH_CHECK_TIMEOUT_MS;
    const streamNames = [...contractEventStreams(), deadLetterStream].map((stream) =>
      this.context.prefix.streamName(stream.name),
    );
    const [postgres, nats, jetstream] = await Promise.all([
      pingDatabase(this.dataSource, timeoutMs),
      pingNats(this.nats, timeoutMs),
      this.probeJetStream(streamNames, timeoutMs),
    ]);
    const ready = postgres && nats && jetstream;
    const report: HealthReport = {
      status: ready ? 'ok' : 'unavailable',
      service: this.context.name,
      version: this.context.version,
      instance: this.context.instanceId,
      uptime_ms: Date.now() - this.context.startedAtMs,
      checks: {
        postgres: postgres ? 'up' : 'down',
        nats: nats ? 'up' : 'down',
        jetstream: jetstream ? 'up' : 'down',
      },
    };
    await reply.status(ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).send(report);
  }

  /** Every stream's info costs the broker's meta layer a request; one probe per second is plenty. */
  private probeJetStream(streamNames: readonly string[], timeoutMs: number): Promise<boolean> {
    const nowMs = Date.now();
    if (this.jetstreamProbe && nowMs - this.jetstreamProbe.atMs < JETSTREAM_PROBE_INTERVAL_MS)
      return this.jetstreamProbe.result;
    const result = pingJetStream(this.nats, streamNames, timeoutMs);
    this.jetstreamProbe = { atMs: nowMs, result };
    return result;
  }

  @Get('live')
  liveness(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
