import { Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import { AGENT_ID_PATTERN, type EventEnvelope } from '@pf/contracts';
import { recordDepositor } from '../infrastructure/faucet-tables.js';

/**
 * Learns which agents deposited from casino's `funds_transferred` events (a deposit is a
 * transfer from `world` with reason `deposit`): those agents are not eligible for the faucet.
 * Written through the inbox transaction, so an event redelivered counts once.
 */
@Injectable()
export class DepositsService {
  async onFundsTransferred(envelope: EventEnvelope, runner: QueryRunner): Promise<void> {
    const data = envelope.data as { transferId?: unknown; from?: unknown; to?: unknown; reason?: unknown };
    if (data.from !== 'world' || data.reason !== 'deposit') return;
    if (typeof data.to !== 'string' || !AGENT_ID_PATTERN.test(data.to)) return;
    await recordDepositor(
      runner,
      data.to,
      typeof data.transferId === 'string' ? data.transferId : '',
      envelope.id,
    );
  }
}
