import { Inject, Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import type { EventEnvelope } from '@pf/contracts';
import { PgInbox, prepared, type EventStore } from '@pf/event-store';
import type { ObservedEscrowEvent } from '../domain/job.js';
import type { JobRepository } from '../infrastructure/job-repository.js';
import { EscrowOrdersService } from './escrow-orders.service.js';
import { JOB_REPOSITORY, MARKET_EVENT_STORE } from './tokens.js';

/** What each escrow event type means for a job; the others (opened, funded, rejected, disputed) change nothing. */
const OBSERVED: Readonly<Record<string, (data: Record<string, unknown>) => ObservedEscrowEvent>> = {
  completed: () => 'completed',
  released: () => 'released',
  refunded: () => 'refunded',
  declined: () => 'refunded',
  cancelled: () => 'refunded',
  resolved: (data) => (data.outcome === 'refund' ? 'refunded' : 'released'),
};

/**
 * Follows escrow's events (a durable JetStream consumer on `escrow.events.>`): for an escrow
 * one of this market's awards created, the job decides what the event means, in the same
 * transaction that records the event id in the inbox. So a redelivered or re-published event
 * (the broker's duplicate window is minutes) decides nothing twice, and a crash between the
 * decision and the ack only redelivers it.
 */
@Injectable()
export class EscrowEventsService {
  private readonly inbox: PgInbox;
  private readonly findJobSql: string;

  constructor(
    @Inject(MARKET_EVENT_STORE) store: EventStore,
    @Inject(JOB_REPOSITORY) private readonly repository: JobRepository,
    private readonly orders: EscrowOrdersService,
  ) {
    this.inbox = new PgInbox(store);
    this.findJobSql = `SELECT job_id FROM ${store.schema}.awards WHERE escrow_id = $1`;
  }

  async onEscrowEvent(envelope: EventEnvelope, consumer: string): Promise<void> {
    const observe = OBSERVED[envelope.type];
    const escrowId = envelope.data.escrowId;
    if (!observe || typeof escrowId !== 'string') return;
    // The award row commits before its escrow is created, so an escrow of ours is always found;
    // escrows opened directly (not through a job) are skipped without an inbox row.
    const jobs: Array<{ job_id: string }> = await this.repository.store.dataSource.query(
      prepared(this.findJobSql),
      [escrowId],
    );
    const jobId = jobs[0]?.job_id;
    if (!jobId) return;
    let owesOrders = false;
    await this.inbox.runOnce(consumer, envelope.id, async (runner: QueryRunner) => {
      const decision = await this.repository.lockAndDecide(runner, jobId, () => ({
        kind: 'observe',
        escrowId,
        escrowEvent: observe(envelope.data),
      }));
      owesOrders = decision.orders.length > 0;
    });
    if (owesOrders) this.orders.wakeSoon();
  }
}
