import { main, readSystemVersion } from '@pf/platform';
import { installAccessLog } from './api/access-log.hook.js';
import { installClientErrorHandler } from './api/client-error.js';
import { installCors } from './api/cors.hook.js';
import { HttpErrorFilter } from './api/error.filter.js';
import { installIdempotency } from './api/idempotency.hook.js';
import { installInputGuard } from './api/input-guard.js';
import { installJsonBodyParser } from './api/json-body.js';
import { installJsonNewline } from './api/json-newline.hook.js';
import { installRateLimits } from './api/rate-limit.hook.js';
import { gatewayConfigSchema, idempotencyLeaseMs } from './config.js';
import { GatewayModule } from './gateway.module.js';
import { IdempotencyStore } from './infrastructure/idempotency.store.js';
import { gatewayMigrations } from './infrastructure/migrations.js';

/** How often expired idempotency records are deleted. */
const IDEMPOTENCY_SWEEP_INTERVAL_MS = 10 * 60_000;
let sweepTimer: NodeJS.Timeout | undefined;

main({
  name: 'gateway',
  version: readSystemVersion(),
  configSchema: gatewayConfigSchema,
  migrations: gatewayMigrations,
  rootModule: () => GatewayModule,
  http: (config) => ({
    port: config.PORT,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    bodyParser: false,
    trustProxy: config.TRUST_PROXY,
  }),
  configureApp: (app, context) => {
    const fastify = app.getHttpAdapter().getInstance();
    const { config } = context;
    installAccessLog(fastify, context.logger);
    installCors(fastify);
    installJsonNewline(fastify);
    installRateLimits(fastify, {
      perIpPerMinute: config.RATE_LIMIT_PER_IP_PER_MINUTE,
      perKeyPerMinute: config.RATE_LIMIT_PER_KEY_PER_MINUTE,
    });
    installClientErrorHandler(fastify);
    installJsonBodyParser(fastify);
    installInputGuard(fastify);
    const idempotency = new IdempotencyStore(context.dataSource, idempotencyLeaseMs(config));
    installIdempotency(fastify, idempotency, context.logger, { adminApiKey: config.ADMIN_API_KEY });
    app.useGlobalFilters(new HttpErrorFilter(context.logger));
    const retentionMs = config.IDEMPOTENCY_RETENTION_HOURS * 3_600_000;
    sweepTimer = setInterval(() => {
      idempotency
        .expire(retentionMs)
        .catch((error: unknown) => context.logger.warn({ err: error }, 'idempotency sweep failed'));
    }, IDEMPOTENCY_SWEEP_INTERVAL_MS);
    sweepTimer.unref();
  },
  beforeShutdown: async () => {
    clearInterval(sweepTimer);
  },
});
