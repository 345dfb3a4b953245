import { Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventStore, OutboxRelay } from '@pf/event-store';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { FaucetHandlers } from './api/faucet.handlers.js';
import { ClaimRecoveryService } from './application/claim-recovery.service.js';
import { ClaimsService } from './application/claims.service.js';
import { DepositsService } from './application/deposits.service.js';
import { StatsService } from './application/stats.service.js';
import { FAUCET_EVENT_STORE } from './application/tokens.js';
import { TreasuryService } from './application/treasury.service.js';
import { faucetProjection } from './infrastructure/faucet-projection.js';
import { FAUCET_SCHEMA } from './infrastructure/migrations.js';

const FAUCET_OUTBOX_RELAY = Symbol('FAUCET_OUTBOX_RELAY');

/** Starts the outbox relay with the app and stops it before the connections close. */
class RelayLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(FAUCET_OUTBOX_RELAY) private readonly relay: OutboxRelay) {}

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }
}

/** Claims (own event log), the treasury budget, deposits learned from casino's events. */
@Module({
  controllers: [FaucetHandlers],
  providers: [
    {
      provide: FAUCET_EVENT_STORE,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext) =>
        new EventStore({ dataSource: context.dataSource, schema: FAUCET_SCHEMA, inlineProjections: [faucetProjection] }),
    },
    {
      provide: FAUCET_OUTBOX_RELAY,
      inject: [SERVICE_CONTEXT, FAUCET_EVENT_STORE],
      useFactory: (context: ServiceContext, store: EventStore) =>
        new OutboxRelay({ store, service: 'faucet', connection: context.nats, prefix: context.prefix, logger: context.logger }),
    },
    RelayLifecycle,
    TreasuryService,
    ClaimsService,
    ClaimRecoveryService,
    DepositsService,
    StatsService,
  ],
})
export class FaucetModule {}
