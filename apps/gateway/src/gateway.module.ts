import { Module } from '@nestjs/common';
import { AdminEscrowController } from './api/admin-escrow.controller.js';
import { AdminController } from './api/admin.controller.js';
import { AdminGuard } from './api/admin.guard.js';
import { AgentAuthGuard } from './api/auth.guard.js';
import { CasinoController } from './api/casino.controller.js';
import { EscrowController } from './api/escrow.controller.js';
import { FaucetController } from './api/faucet.controller.js';
import { PingController } from './api/ping.controller.js';

/** The public HTTP surface: turns requests into commands over NATS. */
@Module({
  controllers: [PingController, CasinoController, FaucetController, AdminController, EscrowController, AdminEscrowController],
  providers: [AgentAuthGuard, AdminGuard],
})
export class GatewayModule {}
