import { main, readSystemVersion } from '@pf/platform';
import { escrowConfigSchema } from './config.js';
import { EscrowModule } from './escrow.module.js';

main({
  name: 'escrow',
  version: readSystemVersion(),
  configSchema: escrowConfigSchema,
  migrations: [],
  rootModule: () => EscrowModule,
  http: (config) => ({ port: config.PORT }),
});
