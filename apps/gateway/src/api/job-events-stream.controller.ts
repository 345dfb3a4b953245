import { Controller, Get, Inject, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { CONFIG, LOGGER } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { AgentNotices } from '../infrastructure/agent-notices.js';
import { JobEventFeed } from '../infrastructure/job-event-feed.js';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { parseLastEventId, SseWriter } from './events-stream.controller.js';
import { jobRestEvents } from './rest-events.js';

/**
 * `GET /jobs/events/stream`: Server-Sent Events of the job board for the caller — a poster sees
 * bids arrive and its jobs' awards and completions; a bidder sees its bids and whether it won or
 * lost. Same framing and resumption (`Last-Event-ID`) as `GET /escrow/events/stream`.
 */
@Controller('jobs/events')
export class JobEventsStreamController {
  constructor(
    private readonly feed: JobEventFeed,
    private readonly notices: AgentNotices,
    @Inject(CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get('stream')
  @UseGuards(AgentAuthGuard)
  async stream(@Req() request: AuthenticatedRequest, @Res() reply: FastifyReply): Promise<void> {
    const lastEventId = parseLastEventId(request.headers['last-event-id']);
    const subscription = await this.feed.subscribe(request.agentId!, lastEventId);
    reply.hijack();
    const sink = new SseWriter(reply.raw, this.config.EVENT_STREAM_HEARTBEAT_MS, jobRestEvents);
    sink.open(reply.getHeaders());
    const stopNotices = this.notices.listen(subscription.agentId, (notice) =>
      sink.notice(notice.type, notice.data),
    );
    sink.onClose(() => subscription.close());
    subscription
      .pump(sink)
      .catch((error: unknown) =>
        this.logger.warn({ err: error, agentId: subscription.agentId }, 'job event stream ended'),
      )
      .finally(() => {
        stopNotices();
        sink.end();
      });
  }
}
