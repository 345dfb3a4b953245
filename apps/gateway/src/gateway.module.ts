import { Module } from '@nestjs/common';
import { AdminController } from './api/admin.controller.js';
import { AdminGuard } from './api/admin.guard.js';
import { AgentAuthGuard } from './api/auth.guard.js';
import { CasinoController } from './api/casino.controller.js';
import { PingController } from './api/ping.controller.js';

/** The public HTTP surface: turns requests into commands over NATS. */
@Module({
  controllers: [PingController, CasinoController, AdminController],
  providers: [AgentAuthGuard, AdminGuard],
})
export class GatewayModule {}
