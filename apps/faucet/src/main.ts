import { EventStore, PgInbox } from '@pf/event-store';
import { main, readSystemVersion } from '@pf/platform';
import { faucetConfigSchema } from './config.js';
import { FaucetModule } from './faucet.module.js';
import { FAUCET_SCHEMA, faucetMigrations } from './infrastructure/migrations.js';

main({
  name: 'faucet',
  version: readSystemVersion(),
  configSchema: faucetConfigSchema,
  migrations: faucetMigrations,
  rootModule: () => FaucetModule,
  http: (config) => ({ port: config.PORT }),
  // Casino's events are handled once per event id: the inbox row commits with the effect.
  inbox: (context) => new PgInbox(new EventStore({ dataSource: context.dataSource, schema: FAUCET_SCHEMA })),
});
