import { Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { EventStore, OutboxRelay } from '@pf/event-store';
import { CONFIG, eventSourcingProviders } from '@pf/platform';
import { EscrowHandlers } from './api/escrow.handlers.js';
import { AgentDirectory } from './application/agent-directory.js';
import { EscrowCommands } from './application/escrow-commands.js';
import { EscrowQueriesService } from './application/escrow-queries.service.js';
import { EscrowService } from './application/escrow.service.js';
import { SettlementService } from './application/settlement.service.js';
import { TimeoutSaga } from './application/timeout-saga.js';
import { ESCROW_EVENT_STORE, ESCROW_REPOSITORY } from './application/tokens.js';
import type { EscrowConfig } from './config.js';
import { escrowProjection } from './infrastructure/escrow-projection.js';
import { EscrowRepository } from './infrastructure/escrow-repository.js';

const ESCROW_OUTBOX_RELAY = Symbol('ESCROW_OUTBOX_RELAY');

/**
 * Starts the outbox relay and the sweeper with the app; on shutdown stops the sweeper (its
 * pass finishes), deletes the confirmed settlements and stops the relay, before the
 * connections close.
 */
class EscrowLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(ESCROW_OUTBOX_RELAY) private readonly relay: OutboxRelay,
    private readonly saga: TimeoutSaga,
    private readonly settlements: SettlementService,
  ) {}

  onApplicationBootstrap(): void {
    this.relay.start();
    this.saga.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.saga.stop();
    await this.settlements.flush();
    await this.relay.stop();
  }
}

@Module({
  controllers: [EscrowHandlers],
  providers: [
    ...eventSourcingProviders({
      storeToken: ESCROW_EVENT_STORE,
      relayToken: ESCROW_OUTBOX_RELAY,
      service: 'escrow',
      projections: [escrowProjection],
      manageRelay: false,
    }),
    {
      provide: ESCROW_REPOSITORY,
      inject: [ESCROW_EVENT_STORE, CONFIG],
      useFactory: (store: EventStore, config: EscrowConfig) =>
        new EscrowRepository(store, config.ESCROW_RECOVERY_AFTER_MS),
    },
    EscrowCommands,
    AgentDirectory,
    SettlementService,
    EscrowQueriesService,
    EscrowService,
    TimeoutSaga,
    EscrowLifecycle,
  ],
})
export class EscrowModule {}
