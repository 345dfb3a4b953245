import { main, readSystemVersion } from '@pf/platform';
import { escrowConfigSchema } from './config.js';
import { EscrowModule } from './escrow.module.js';
import { escrowMigrations } from './infrastructure/migrations.js';

main({
  name: 'escrow',
  version: readSystemVersion(),
  configSchema: escrowConfigSchema,
  migrations: escrowMigrations,
  rootModule: () => EscrowModule,
  http: (config) => ({ port: config.PORT }),
  // Its commands' statements are planned once per connection, not per execution (see runService).
  planCacheMode: 'force_generic_plan',
});
