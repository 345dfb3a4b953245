import { main, readSystemVersion } from '@pf/platform';
import { marketConfigSchema } from './config.js';
import { marketMigrations } from './infrastructure/migrations.js';
import { MarketModule } from './market.module.js';

main({
  name: 'market',
  version: readSystemVersion(),
  configSchema: marketConfigSchema,
  migrations: marketMigrations,
  rootModule: () => MarketModule,
  http: (config) => ({ port: config.PORT }),
});
