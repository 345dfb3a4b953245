import { Module } from '@nestjs/common';
import { eventSourcingProviders } from '@pf/platform';
import { FaucetHandlers } from './api/faucet.handlers.js';
import { ClaimRecoveryService } from './application/claim-recovery.service.js';
import { ClaimsService } from './application/claims.service.js';
import { DepositsService } from './application/deposits.service.js';
import { StatsService } from './application/stats.service.js';
import { FAUCET_EVENT_STORE } from './application/tokens.js';
import { TreasuryService } from './application/treasury.service.js';
import { faucetProjection } from './infrastructure/faucet-projection.js';

const FAUCET_OUTBOX_RELAY = Symbol('FAUCET_OUTBOX_RELAY');

/** Claims (own event log), the treasury budget, deposits learned from casino's events. */
@Module({
  controllers: [FaucetHandlers],
  providers: [
    ...eventSourcingProviders({
      storeToken: FAUCET_EVENT_STORE,
      relayToken: FAUCET_OUTBOX_RELAY,
      service: 'faucet',
      projections: [faucetProjection],
    }),
    TreasuryService,
    ClaimsService,
    ClaimRecoveryService,
    DepositsService,
    StatsService,
  ],
})
export class FaucetModule {}
