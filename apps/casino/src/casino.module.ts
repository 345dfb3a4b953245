import { Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EventStore, OutboxRelay } from '@pf/event-store';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { CasinoHandlers } from './api/casino.handlers.js';
import { AccountsService } from './application/accounts.service.js';
import { AgentsService } from './application/agents.service.js';
import { LedgerCheckService } from './application/ledger-check.service.js';
import { LedgerService } from './application/ledger.service.js';
import { CASINO_EVENT_STORE } from './application/tokens.js';
import { casinoProjection } from './infrastructure/ledger-projection.js';
import { CASINO_SCHEMA } from './infrastructure/migrations.js';

const CASINO_OUTBOX_RELAY = Symbol('CASINO_OUTBOX_RELAY');

/** Starts the outbox relay with the app and stops it before the connections close. */
class RelayLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(CASINO_OUTBOX_RELAY) private readonly relay: OutboxRelay) {}

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }
}

@Module({
  controllers: [CasinoHandlers],
  providers: [
    {
      provide: CASINO_EVENT_STORE,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext) =>
        new EventStore({ dataSource: context.dataSource, schema: CASINO_SCHEMA, inlineProjections: [casinoProjection] }),
    },
    {
      provide: CASINO_OUTBOX_RELAY,
      inject: [SERVICE_CONTEXT, CASINO_EVENT_STORE],
      useFactory: (context: ServiceContext, store: EventStore) =>
        new OutboxRelay({ store, service: 'casino', connection: context.nats, prefix: context.prefix, logger: context.logger }),
    },
    RelayLifecycle,
    AgentsService,
    LedgerService,
    AccountsService,
    LedgerCheckService,
  ],
})
export class CasinoModule {}
