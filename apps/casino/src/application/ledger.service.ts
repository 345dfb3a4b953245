import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { DomainError, ErrorCode, type OperationReply } from '@pf/contracts';
import { CommandPipeline, fold, type BatchWriter, type EventStore } from '@pf/event-store';
import { CONFIG } from '@pf/platform';
import { ledgerDecider, type LedgerCommand } from '../domain/ledger.js';
import { decodeLedgerEvent } from '../infrastructure/ledger-codec.js';
import type { CasinoConfig } from '../config.js';
import { operationStream, type CommandOrigin } from './ledger-commands.js';
import { LedgerBatchStrategy, toReply, type LedgerItem } from './ledger-strategy.js';
import { CASINO_EVENT_STORE } from './tokens.js';

export type { CommandOrigin } from './ledger-commands.js';
export { operationStream } from './ledger-commands.js';
export { ledgerCheckSql, ledgerLoadSql } from './ledger-strategy.js';

/** Most commands decided and committed in one batch. */
const MAX_BATCH_SIZE = 64;
/**
 * Batches in flight at once (LEDGER_BATCHES_IN_FLIGHT), each on its own connection: batches on
 * disjoint accounts proceed in parallel; on shared ones the row locks serialise them (one sorted
 * lock statement per batch: never a deadlock). Kept below the pool size so reads and the outbox
 * relay always find a connection. Measured through NATS (bench:ledger, concurrency 16, three
 * alternating pairs): 1 in flight gave 2,493–3,065 holds/s at 447–556 µs of machine CPU per hold,
 * 3 in flight 2,024–2,430 at 670–820 µs — bigger batches, less work per hold.
 */
function batchConcurrency(configured: number, poolMax: number): number {
  return Math.max(1, Math.min(configured, poolMax - 1));
}
/**
 * A batch that would start with fewer commands than this, while no batch is in flight, first
 * waits one event-loop turn (setImmediate): the commands the same poll has already read from
 * NATS join it instead of waiting for the next batch. Measured (bench:ledger, concurrency 16,
 * three alternating pairs): 3,659–3,866 holds/s at 322–341 µs of machine CPU per hold, against
 * 3,172–3,619 at 384–439 without; the latency of a lone command does not move (c1 p50 1.78 vs
 * 1.81 ms).
 */
const GATHER_BELOW = 12;
/**
 * Attempts of a batch on version conflicts (another replica wrote the same operation, or the
 * cache's guess was stale), under the pipeline's jittered policy.
 */
const MAX_ATTEMPTS = 20;
/** Mandated commands in one process at once: each holds a connection while it waits for its key's lock. */
const MANDATED_IN_FLIGHT = 2;
/** Waiting mandated commands; more are refused as busy (the caller retries with its Idempotency-Key). */
const MANDATED_QUEUE_MAX = 1_000;
/** How long a shutdown waits for the batches in flight and queued to answer. */
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * The ledger's commands on the one write path (ADR 0021): a thin adapter over the
 * CommandPipeline's batch strategy. Commands wait in the pipeline's queue and are decided a batch
 * at a time by LedgerBatchStrategy (its cache, its load statement, the ledger decider) and
 * written in one pipelined round trip when the cache knows the state, two otherwise; under load
 * batches grow, when idle a command runs alone at once. A sub-key's command goes through the
 * same strategy as a batch of one, on its own writer (its key row lock must not hold up the
 * batches): see mandated-ledger.ts.
 */
@Injectable()
export class LedgerService implements OnApplicationShutdown {
  private readonly pipeline: CommandPipeline;
  private readonly batches: BatchWriter<LedgerItem, OperationReply>;
  private readonly mandated: BatchWriter<LedgerItem, OperationReply>;
  private stopping = false;

  constructor(
    @Inject(CASINO_EVENT_STORE) private readonly store: EventStore,
    @Inject(CONFIG) config: CasinoConfig,
  ) {
    this.pipeline = new CommandPipeline(store, { retry: { maxAttempts: MAX_ATTEMPTS } });
    const strategy = new LedgerBatchStrategy(store);
    this.batches = this.pipeline.batchWriter(strategy, {
      maxBatchSize: MAX_BATCH_SIZE,
      maxBatchesInFlight: batchConcurrency(config.LEDGER_BATCHES_IN_FLIGHT, config.DB_POOL_MAX),
      gatherBelow: GATHER_BELOW,
      busyMessage: 'casino is busy; retry with the same Idempotency-Key',
    });
    this.mandated = this.pipeline.batchWriter(strategy, {
      maxBatchSize: 1,
      maxBatchesInFlight: MANDATED_IN_FLIGHT,
      maxQueued: MANDATED_QUEUE_MAX,
      busyMessage: 'casino is busy; retry with the same Idempotency-Key',
    });
  }

  execute(command: LedgerCommand, origin: CommandOrigin): Promise<OperationReply> {
    if (this.stopping)
      return Promise.reject(new DomainError(ErrorCode.serviceUnavailable, 'casino is shutting down'));
    if (!origin.mandate) return this.batches.execute({ command, origin });
    // A sub-key's command runs alone, with its key row locked.
    if (command.kind !== 'hold' && command.kind !== 'transfer')
      return Promise.reject(new Error(`a mandate applies to holds and transfers, not ${command.kind}`));
    return this.mandated.execute({ command, origin });
  }

  /** The current outcome of an operation, without changing anything. */
  async outcome(operationId: string): Promise<OperationReply | null> {
    const history = await this.store.readStream(operationStream(operationId));
    if (history.length === 0) return null;
    const events = history.map((event) => decodeLedgerEvent(event.type, event.data));
    return toReply(fold(ledgerDecider, events).operation, history.at(-1)!.globalPosition);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.pipeline.drain(),
      new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }
}
