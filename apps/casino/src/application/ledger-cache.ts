import type { AccountBalance, Operation } from '../domain/ledger.js';

/** What a batch left an operation stream at: enough to decide the next command on it without reading the log. */
export interface KnownOperation {
  version: number;
  lastPosition: number | null;
  operation: Operation;
}

interface KnownBalance {
  balance: AccountBalance;
  /** The log position of the batch that left it: an older batch's answer never overwrites a newer one. */
  position: number;
}

/**
 * The ledger as this process last committed it: balance rows and operation streams. Only a
 * guess — another replica, an operator or a replay may have moved on — so a batch decided on
 * it is checked under the row locks in the same round trip that writes it (the balances must
 * still be these, the streams still at these versions), and anything off sends the batch back
 * to reading the log. What it saves is that read: one round trip and one statement per batch.
 * Bounded (up to a sixteenth over, see evictOldest): the least recently written entries go
 * first (a miss only means reading the log).
 */
export class LedgerCache {
  private readonly balances = new Map<string, KnownBalance>();
  private readonly operations = new Map<string, KnownOperation>();

  constructor(private readonly capacity = { balances: 50_000, operations: 10_000 }) {}

  balance(account: string): AccountBalance | undefined {
    return this.balances.get(account)?.balance;
  }

  operation(operationId: string): KnownOperation | undefined {
    return this.operations.get(operationId);
  }

  /** Records what a committed batch left, `position` being the batch's last log position. */
  remember(
    balances: ReadonlyMap<string, AccountBalance>,
    operations: ReadonlyMap<string, KnownOperation>,
    position: number,
  ): void {
    for (const [account, balance] of balances) {
      const known = this.balances.get(account);
      if (known && known.position > position) continue;
      this.balances.delete(account);
      this.balances.set(account, { balance, position });
      evictOldest(this.balances, this.capacity.balances);
    }
    for (const [operationId, operation] of operations) {
      const known = this.operations.get(operationId);
      if (known && known.version > operation.version) continue;
      this.operations.delete(operationId);
      this.operations.set(operationId, operation);
      evictOldest(this.operations, this.capacity.operations);
    }
  }

  forget(accounts: Iterable<string>, operationIds: Iterable<string>): void {
    for (const account of accounts) this.balances.delete(account);
    for (const operationId of operationIds) this.operations.delete(operationId);
  }
}

/**
 * Drops the least recently written entries once the map is a sixteenth over capacity, back down
 * to capacity, in one pass. One entry at a time cost ~6.6 µs per insert at 10,000 entries (a
 * Map keeps deleted slots at its front until it rehashes, and every `keys().next()` walked over
 * them), against ~0.2 µs in chunks.
 */
function evictOldest(map: Map<string, unknown>, capacity: number): void {
  if (map.size <= capacity + (capacity >> 4)) return;
  let excess = map.size - capacity;
  for (const key of map.keys()) {
    if (excess-- <= 0) break;
    map.delete(key);
  }
}
