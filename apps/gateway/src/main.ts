import { main, readSystemVersion } from '@pf/platform';
import { HttpErrorFilter } from './api/error.filter.js';
import { installJsonBodyParser } from './api/json-body.js';
import { gatewayConfigSchema } from './config.js';
import { GatewayModule } from './gateway.module.js';

main({
  name: 'gateway',
  version: readSystemVersion(),
  configSchema: gatewayConfigSchema,
  migrations: [],
  rootModule: () => GatewayModule,
  http: (config) => ({ port: config.PORT, bodyLimitBytes: config.BODY_LIMIT_BYTES, bodyParser: false }),
  configureApp: (app, context) => {
    installJsonBodyParser(app.getHttpAdapter().getInstance());
    app.useGlobalFilters(new HttpErrorFilter(context.logger));
  },
});
