import { ReputationController } from './api/reputation.controller.js';
import { Module } from '@nestjs/common';
import { CommandClient } from '@pf/messaging';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { AdminEscrowController } from './api/admin-escrow.controller.js';
import { AdminController } from './api/admin.controller.js';
import { AdminDashboardController } from './api/admin-dashboard.controller.js';
import { AdminGuard } from './api/admin.guard.js';
import { AgentAuthGuard } from './api/auth.guard.js';
import { CasinoController } from './api/casino.controller.js';
import { DashboardController } from './api/dashboard.controller.js';
import { DiscoveryController } from './api/discovery.controller.js';
import { DocsController } from './api/docs.controller.js';
import { EscrowController } from './api/escrow.controller.js';
import { EventsStreamController } from './api/events-stream.controller.js';
import { FaucetController } from './api/faucet.controller.js';
import { JobEventsStreamController } from './api/job-events-stream.controller.js';
import { JobsController } from './api/jobs.controller.js';
import { KeysController } from './api/keys.controller.js';
import { PayController } from './api/pay.controller.js';
import { PingController } from './api/ping.controller.js';
import { PublicEventsController } from './api/public-events.controller.js';
import { ReceiptsController } from './api/receipts.controller.js';
import { WebhooksController } from './api/webhooks.controller.js';
import type { GatewayConfig } from './config.js';
import { AgentNotices } from './infrastructure/agent-notices.js';
import { EscrowEventFeed } from './infrastructure/escrow-event-feed.js';
import { JobEventFeed } from './infrastructure/job-event-feed.js';
import { PublicEscrowEventFeed, PublicJobEventFeed } from './infrastructure/public-event-feeds.js';
import { ReceiptIssuer } from './infrastructure/receipt-issuer.js';
import { ReceiptSigner } from './infrastructure/receipt-signer.js';
import { ReceiptStore } from './infrastructure/receipt-store.js';
import { WebhookDispatcher } from './infrastructure/webhook-dispatcher.js';
import { WebhookFanout } from './infrastructure/webhook-fanout.js';
import { WebhookSecrets } from './infrastructure/webhook-secrets.js';
import { WebhookStore } from './infrastructure/webhook-store.js';
import { StreamTokens } from './infrastructure/stream-tokens.js';
import { McpController } from './mcp/mcp.controller.js';

/** The public HTTP surface: turns requests into commands over NATS. */
@Module({
  controllers: [
    PingController,
    CasinoController,
    KeysController,
    PayController,
    FaucetController,
    AdminController,
    EscrowController,
    AdminEscrowController,
    AdminDashboardController,
    JobsController,
    ReputationController,
    ReceiptsController,
    WebhooksController,
    JobEventsStreamController,
    EventsStreamController,
    PublicEventsController,
    McpController,
    DocsController,
    DiscoveryController,
    DashboardController,
  ],
  providers: [
    AgentAuthGuard,
    AdminGuard,
    EscrowEventFeed,
    JobEventFeed,
    PublicEscrowEventFeed,
    PublicJobEventFeed,
    ReceiptIssuer,
    AgentNotices,
    WebhookFanout,
    WebhookDispatcher,
    {
      provide: WebhookSecrets,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext<GatewayConfig>) => WebhookSecrets.fromConfig(context.config),
    },
    {
      provide: WebhookStore,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext<GatewayConfig>) => new WebhookStore(context.dataSource),
    },
    {
      provide: ReceiptSigner,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext<GatewayConfig>) => ReceiptSigner.fromConfig(context.config),
    },
    {
      provide: ReceiptStore,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext<GatewayConfig>) => new ReceiptStore(context.dataSource),
    },
    {
      provide: StreamTokens,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext<GatewayConfig>) =>
        new StreamTokens(
          context.config.EVENT_STREAM_TOKEN_SECRET,
          context.config.EVENT_STREAM_TOKEN_TTL_SECONDS * 1000,
        ),
    },
    {
      // Every command the gateway sends waits at most COMMAND_TIMEOUT_MS, then answers 503:
      // no request hangs on a stopped or stuck service.
      provide: COMMAND_CLIENT,
      inject: [SERVICE_CONTEXT],
      useFactory: (context: ServiceContext<GatewayConfig>) =>
        new CommandClient({
          connection: context.nats,
          prefix: context.prefix,
          timeoutMs: context.config.COMMAND_TIMEOUT_MS,
        }),
    },
  ],
})
export class GatewayModule {}
