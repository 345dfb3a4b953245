import { main, readSystemVersion } from '@pf/platform';
import { casinoConfigSchema } from './config.js';
import { CasinoModule } from './casino.module.js';

main({
  name: 'casino',
  version: readSystemVersion(),
  configSchema: casinoConfigSchema,
  migrations: [],
  rootModule: () => CasinoModule,
  http: (config) => ({ port: config.PORT }),
});
