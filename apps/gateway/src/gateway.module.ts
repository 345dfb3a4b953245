import { Module } from '@nestjs/common';
import { PingController } from './api/ping.controller.js';

/** The public HTTP surface: turns requests into commands over NATS. */
@Module({ controllers: [PingController] })
export class GatewayModule {}
