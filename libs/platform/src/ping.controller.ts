import { Controller, Inject, type Type } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { commandSubjects, SERVICE_NAMES, type PingReply, type ServiceName } from '@pf/contracts';
import { SERVICE_CONTEXT } from './tokens.js';
import type { ServiceContext } from './service-context.js';

/** Answers `<service>.cmd.ping` with the service's name and version: proof the wiring is real. */
export function pingController(service: ServiceName): Type<unknown> {
  @Controller()
  class PingController {
    constructor(@Inject(SERVICE_CONTEXT) private readonly context: ServiceContext) {}

    @MessagePattern(commandSubjects[service].ping)
    ping(): PingReply {
      return {
        service: this.context.name,
        version: this.context.version,
        instance: this.context.instanceId,
        uptimeMs: Date.now() - this.context.startedAtMs,
      };
    }
  }
  return PingController;
}

export function isServiceName(name: string): name is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(name);
}
