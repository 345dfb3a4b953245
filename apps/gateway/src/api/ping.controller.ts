import { Controller, Get, Inject } from '@nestjs/common';
import { commandSubjects, DomainError, ErrorCode, SERVICE_NAMES, type PingReply } from '@pf/contracts';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';

interface ServicePing {
  name: string;
  version: string;
  instance: string;
  latency_ms: number;
}

/** `GET /api/v1/ping`: asks every service over NATS for its name and version. */
@Controller('api/v1')
export class PingController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
  ) {}

  @Get('ping')
  async ping(): Promise<{ gateway: { name: string; version: string }; services: ServicePing[] }> {
    const timeoutMs = this.context.config.COMMAND_TIMEOUT_MS;
    const results = await Promise.allSettled(
      SERVICE_NAMES.map((service) => this.pingOne(service, timeoutMs)),
    );
    const down = SERVICE_NAMES.filter((_, index) => results[index]!.status === 'rejected');
    if (down.length > 0) {
      throw new DomainError(ErrorCode.serviceUnavailable, `not answering: ${down.join(', ')}`, {
        unavailable: down,
      });
    }
    return {
      gateway: { name: this.context.name, version: this.context.version },
      services: results.map((result) => (result as PromiseFulfilledResult<ServicePing>).value),
    };
  }

  private async pingOne(service: (typeof SERVICE_NAMES)[number], timeoutMs: number): Promise<ServicePing> {
    const startedAt = performance.now();
    const reply = await this.commands.request<PingReply>(commandSubjects[service].ping, {}, timeoutMs);
    return {
      name: reply.service,
      version: reply.version,
      instance: reply.instance,
      latency_ms: Math.round((performance.now() - startedAt) * 100) / 100,
    };
  }
}
