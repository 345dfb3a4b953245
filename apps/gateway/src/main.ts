import { main, readSystemVersion } from '@pf/platform';
import { HttpErrorFilter } from './api/error.filter.js';
import { gatewayConfigSchema } from './config.js';
import { GatewayModule } from './gateway.module.js';

main({
  name: 'gateway',
  version: readSystemVersion(),
  configSchema: gatewayConfigSchema,
  migrations: [],
  rootModule: () => GatewayModule,
  http: (config) => ({ port: config.PORT, bodyLimitBytes: config.BODY_LIMIT_BYTES }),
  configureApp: (app, context) => {
    app.useGlobalFilters(new HttpErrorFilter(context.logger));
  },
});
