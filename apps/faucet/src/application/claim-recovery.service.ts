import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DomainError, ErrorCode } from '@pf/contracts';
import type { EventStore } from '@pf/event-store';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { FaucetConfig } from '../config.js';
import {
  claimsToRecover,
  pruneExpiredAddresses,
  type PendingClaimRow,
} from '../infrastructure/faucet-tables.js';
import { BackgroundTask, type NextStep } from './background-task.js';
import { ClaimsService } from './claims.service.js';
import { FAUCET_EVENT_STORE } from './tokens.js';
import { TreasuryService } from './treasury.service.js';

/** Pending claims completed per pass. */
const RECOVERY_BATCH = 50;

/**
 * The recovery sweep: every few seconds it completes pending claims that no request is paying
 * out (the ledger was down, or the process died mid-claim) by sending the same idempotent
 * transfer again, and forgets client addresses older than the window. Replicas may sweep the
 * same claim at once: the transfer moves money once and the second `claimed` is a no-op.
 */
@Injectable()
export class ClaimRecoveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly task: BackgroundTask;

  constructor(
    @Inject(FAUCET_EVENT_STORE) private readonly store: EventStore,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<FaucetConfig>,
    private readonly claims: ClaimsService,
    private readonly treasury: TreasuryService,
  ) {
    this.task = new BackgroundTask('claim-recovery', context.logger, () => this.sweep());
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /** One pass; public for tests and operators. */
  async sweep(): Promise<NextStep> {
    const next = { againInMs: this.context.config.FAUCET_SWEEP_INTERVAL_MS };
    if (!this.treasury.isFunded()) return next;
    const pending = await claimsToRecover(
      this.store.dataSource,
      this.context.config.FAUCET_CLAIM_LEASE_MS,
      RECOVERY_BATCH,
    );
    for (const row of pending) {
      if (!(await this.recover(row))) break;
    }
    await pruneExpiredAddresses(this.store.dataSource);
    return next;
  }

  /** False when the ledger is not answering: the rest of the batch waits for the next pass. */
  private async recover(row: PendingClaimRow): Promise<boolean> {
    const claim = {
      claimId: row.claim_id,
      agentId: row.agent_id,
      amountMicros: BigInt(row.amount_micros),
      requestedAtMs: row.requested_at.getTime(),
    };
    try {
      await this.claims.resume(claim);
      this.context.logger.info(
        { claimId: claim.claimId, agentId: claim.agentId },
        'pending faucet claim completed by the sweep',
      );
      return true;
    } catch (error) {
      const code = error instanceof DomainError ? error.code : undefined;
      if (code === ErrorCode.serviceUnavailable) return false;
      this.context.logger.warn(
        { err: (error as Error).message, code, claimId: claim.claimId },
        'could not complete a pending faucet claim',
      );
      return true;
    }
  }
}
