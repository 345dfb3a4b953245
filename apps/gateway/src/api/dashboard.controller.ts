import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DomainError, ErrorCode } from '@pf/contracts';
import { CONFIG } from '@pf/platform';
import type { GatewayConfig } from '../config.js';
import { DASHBOARD_CSP, DashboardFiles, defaultDashboardDir, type DashboardFile } from './dashboard-files.js';

/**
 * `GET /dashboard`: the web page built by `npm run build` (apps/dashboard, docs/adr/0018) and its
 * hashed assets. The page only reads the public API and, with the admin key an operator types
 * in, the `/admin` routes; it holds no secret of its own.
 */
@Controller('dashboard')
export class DashboardController {
  private readonly files: DashboardFiles;

  constructor(@Inject(CONFIG) config: GatewayConfig) {
    this.files = new DashboardFiles(config.DASHBOARD_DIR ?? defaultDashboardDir());
  }

  @Get()
  async page(@Res() reply: FastifyReply): Promise<void> {
    const file = await this.files.page();
    if (!file)
      throw new DomainError(
        ErrorCode.serviceUnavailable,
        'the dashboard is not built: run npm run build (it writes dist/dashboard)',
      );
    await send(reply, file);
  }

  @Get('assets/:file')
  async asset(@Param('file') name: string, @Res() reply: FastifyReply): Promise<void> {
    const file = await this.files.asset(name);
    if (!file) throw new DomainError(ErrorCode.notFound, 'no such dashboard file');
    await send(reply, file);
  }
}

async function send(reply: FastifyReply, file: DashboardFile): Promise<void> {
  await reply
    .header('content-type', file.contentType)
    .header('cache-control', file.cacheControl)
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .send(file.body);
}
