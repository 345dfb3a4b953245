import { main, readSystemVersion } from '@pf/platform';
import { casinoConfigSchema } from './config.js';
import { CasinoModule } from './casino.module.js';
import { casinoMigrations } from './infrastructure/migrations.js';

main({
  name: 'casino',
  version: readSystemVersion(),
  configSchema: casinoConfigSchema,
  migrations: casinoMigrations,
  rootModule: () => CasinoModule,
  http: (config) => ({ port: config.PORT }),
});
