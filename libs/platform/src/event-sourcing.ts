import {
  Inject,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import type { ServiceName } from '@pf/contracts';
import { EventStore, OutboxRelay, type Projection } from '@pf/event-store';
import type { ServiceContext } from './service-context.js';
import { SERVICE_CONTEXT } from './tokens.js';

export interface EventSourcingOptions {
  /** Injection token of the service's EventStore. */
  storeToken: symbol;
  /** Injection token of its OutboxRelay. */
  relayToken: symbol;
  /** The service's schema; also the first token of its event subjects. */
  service: ServiceName;
  /** Inline projections, updated in the append's transaction. */
  projections: readonly Projection[];
  /**
   * Start the relay with the app and stop it on shutdown (default). A service that must stop
   * other work first (escrow's sweeper) says false and orders its own shutdown.
   */
  manageRelay?: boolean;
}

/**
 * The providers every event-sourced service needs: its EventStore on its own schema with its
 * inline projections, and the OutboxRelay that publishes its events to `<service>.events.*`,
 * started with the app and stopped before the connections close.
 */
export function eventSourcingProviders(options: EventSourcingOptions): Provider[] {
  const { storeToken, relayToken, service, projections } = options;
  const providers: Provider[] = [
    {
      provide: storeToken,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext) =>
        new EventStore({ dataSource: context.dataSource, schema: service, inlineProjections: projections }),
    },
    {
      provide: relayToken,
      inject: [SERVICE_CONTEXT, storeToken],
      useFactory: (context: ServiceContext, store: EventStore) =>
        new OutboxRelay({
          store,
          service,
          connection: context.nats,
          prefix: context.prefix,
          logger: context.logger,
        }),
    },
  ];
  if (options.manageRelay === false) return providers;

  class RelayLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
    constructor(@Inject(relayToken) private readonly relay: OutboxRelay) {}

    onApplicationBootstrap(): void {
      this.relay.start();
    }

    async onApplicationShutdown(): Promise<void> {
      await this.relay.stop();
    }
  }
  return [...providers, RelayLifecycle];
}
