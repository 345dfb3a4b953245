import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import { gatewaySubjects } from '@pf/contracts';
import { decodeJson, encodeJson } from '@pf/messaging';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { GatewayConfig } from '../config.js';

/** A notice for one agent's open SSE streams (not an event of any log: it has no SSE `id:`). */
export interface AgentNotice {
  agentId: string;
  type: string;
  data: Record<string, unknown>;
}

type Listener = (notice: AgentNotice) => void;

/**
 * Notices to an agent's live SSE streams wherever they are connected: the gateway that has news
 * (a webhook it disabled) publishes on core NATS `gateway.cmd.notice.<agent>`, and every gateway
 * replica hands it to its own streams of that agent. At most once, like any live push: the lasting
 * record is the webhook's `status` in `GET /webhooks`.
 */
@Injectable()
export class AgentNotices implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly listeners = new Map<string, Set<Listener>>();
  private subscription?: Subscription;

  constructor(@Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>) {}

  onApplicationBootstrap(): void {
    const subject = this.context.prefix.subject(`${gatewaySubjects.notices}.*`);
    this.subscription = this.context.nats.subscribe(subject, {
      callback: (error, message) => {
        if (error) return;
        try {
          const notice = decodeJson<AgentNotice>(message.data);
          for (const listener of this.listeners.get(notice.agentId) ?? []) listener(notice);
        } catch (failure) {
          this.context.logger.warn({ err: failure }, 'malformed agent notice dropped');
        }
      },
    });
  }

  onModuleDestroy(): void {
    this.subscription?.unsubscribe();
  }

  publish(notice: AgentNotice): void {
    this.context.nats.publish(
      this.context.prefix.subject(`${gatewaySubjects.notices}.${notice.agentId}`),
      encodeJson(notice),
    );
  }

  /** Returns the function that stops listening (call it when the stream closes). */
  listen(agentId: string, listener: Listener): () => void {
    let set = this.listeners.get(agentId);
    if (!set) this.listeners.set(agentId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(agentId);
    };
  }
}
