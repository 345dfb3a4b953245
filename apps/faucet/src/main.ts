import { main, readSystemVersion } from '@pf/platform';
import { faucetConfigSchema } from './config.js';
import { FaucetModule } from './faucet.module.js';

main({
  name: 'faucet',
  version: readSystemVersion(),
  configSchema: faucetConfigSchema,
  migrations: [],
  rootModule: () => FaucetModule,
  http: (config) => ({ port: config.PORT }),
});
