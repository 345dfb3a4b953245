import { Inject, Injectable } from '@nestjs/common';
import type { FaucetStatsView } from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import { treasuryTotals } from '../infrastructure/faucet-tables.js';
import { FAUCET_EVENT_STORE } from './tokens.js';

/** Public numbers, from the counters the inline projection keeps (one row, no counting). */
@Injectable()
export class StatsService {
  constructor(@Inject(FAUCET_EVENT_STORE) private readonly store: EventStore) {}

  async stats(): Promise<FaucetStatsView> {
    const totals = await treasuryTotals(this.store.dataSource);
    return {
      totalClaims: totals.claimsCompleted,
      // One completed claim per agent, ever (the claims table enforces it too).
      totalAgents: totals.claimsCompleted,
      totalValueMicros: totals.claimedMicros,
      remainingBudgetMicros: totals.remainingMicros,
      fundedMicros: totals.fundedMicros,
      pendingClaims: totals.claimsPending,
    };
  }
}
