import { Global, Module, type DynamicModule } from '@nestjs/common';
import { HealthController } from './health.controller.js';
import { isServiceName, pingController } from './ping.controller.js';
import type { ServiceContext } from './service-context.js';
import { COMMAND_CLIENT, CONFIG, DATA_SOURCE, LOGGER, NATS_CONNECTION, SERVICE_CONTEXT } from './tokens.js';

/** Makes the service's connections injectable everywhere and serves its health endpoints. */
@Global()
@Module({})
export class PlatformModule {
  static forService(context: ServiceContext): DynamicModule {
    const providers = [
      { provide: SERVICE_CONTEXT, useValue: context },
      { provide: CONFIG, useValue: context.config },
      { provide: LOGGER, useValue: context.logger },
      { provide: DATA_SOURCE, useValue: context.dataSource },
      { provide: NATS_CONNECTION, useValue: context.nats },
      { provide: COMMAND_CLIENT, useValue: context.commands },
    ];
    return {
      module: PlatformModule,
      controllers: isServiceName(context.name)
        ? [HealthController, pingController(context.name)]
        : [HealthController],
      providers,
      exports: providers.map((provider) => provider.provide),
    };
  }
}
