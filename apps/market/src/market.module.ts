import { Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { EventStore, OutboxRelay } from '@pf/event-store';
import { eventSourcingProviders, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { MarketConfig } from './config.js';
import { MarketHandlers } from './api/market.handlers.js';
import { EscrowEventsService } from './application/escrow-events.service.js';
import { EscrowOrdersService } from './application/escrow-orders.service.js';
import { JobQueriesService } from './application/job-queries.service.js';
import { JobsService } from './application/jobs.service.js';
import { MarketSweeper } from './application/market-sweeper.js';
import { JOB_REPOSITORY, MARKET_EVENT_STORE } from './application/tokens.js';
import { JobRepository } from './infrastructure/job-repository.js';
import { marketProjection } from './infrastructure/market-projection.js';
import { reputationProjection } from './infrastructure/reputation-projection.js';
import { ReputationService } from './application/reputation.service.js';
import { ReputationHandlers } from './api/reputation.handlers.js';

const MARKET_OUTBOX_RELAY = Symbol('MARKET_OUTBOX_RELAY');

/** Starts the outbox relay and the sweeper with the app; on shutdown stops the sweeper (its pass finishes), then the relay. */
class MarketLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(MARKET_OUTBOX_RELAY) private readonly relay: OutboxRelay,
    private readonly sweeper: MarketSweeper,
  ) {}

  onApplicationBootstrap(): void {
    this.relay.start();
    this.sweeper.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sweeper.stop();
    await this.relay.stop();
  }
}

@Module({
  controllers: [MarketHandlers, ReputationHandlers],
  providers: [
    ...eventSourcingProviders({
      storeToken: MARKET_EVENT_STORE,
      relayToken: MARKET_OUTBOX_RELAY,
      service: 'market',
      projections: [marketProjection, reputationProjection],
      manageRelay: false,
    }),
    {
      provide: JOB_REPOSITORY,
      inject: [MARKET_EVENT_STORE, SERVICE_CONTEXT],
      useFactory: (store: EventStore, context: ServiceContext<MarketConfig>) =>
        new JobRepository(store, {
          groupCommit:
            context.config.MARKET_GROUP_COMMIT_BATCHES > 0
              ? { maxBatchesInFlight: context.config.MARKET_GROUP_COMMIT_BATCHES }
              : undefined,
        }),
    },
    EscrowOrdersService,
    JobsService,
    JobQueriesService,
    EscrowEventsService,
    ReputationService,
    MarketSweeper,
    MarketLifecycle,
  ],
})
export class MarketModule {}
