import { Module } from '@nestjs/common';
import { eventSourcingProviders } from '@pf/platform';
import { CasinoHandlers } from './api/casino.handlers.js';
import { KeysHandlers } from './api/keys.handlers.js';
import { AccountsService } from './application/accounts.service.js';
import { AgentsService } from './application/agents.service.js';
import { KeysService } from './application/keys.service.js';
import { LedgerCheckService } from './application/ledger-check.service.js';
import { LedgerService } from './application/ledger.service.js';
import { CASINO_EVENT_STORE } from './application/tokens.js';
import { casinoKeysProjection } from './infrastructure/keys-projection.js';
import { casinoProjection } from './infrastructure/ledger-projection.js';

const CASINO_OUTBOX_RELAY = Symbol('CASINO_OUTBOX_RELAY');

@Module({
  controllers: [CasinoHandlers, KeysHandlers],
  providers: [
    ...eventSourcingProviders({
      storeToken: CASINO_EVENT_STORE,
      relayToken: CASINO_OUTBOX_RELAY,
      service: 'casino',
      projections: [casinoProjection, casinoKeysProjection],
    }),
    AgentsService,
    KeysService,
    LedgerService,
    AccountsService,
    LedgerCheckService,
  ],
})
export class CasinoModule {}
