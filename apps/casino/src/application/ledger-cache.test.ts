import type { AccountBalance } from '../domain/ledger.js';
import { LedgerCache, type KnownOperation } from './ledger-cache.js';

const balance = (micros: number): AccountBalance => ({ availableMicros: BigInt(micros), heldMicros: 0n });
const operation = (version: number): KnownOperation => ({
  version,
  lastPosition: version,
  operation: { status: 'none' },
});

describe('LedgerCache', () => {
  it('keeps a newer batch answer over an older one', () => {
    const cache = new LedgerCache();
    cache.remember(new Map([['ag_000000000001', balance(5)]]), new Map([['op-1', operation(2)]]), 20);
    cache.remember(new Map([['ag_000000000001', balance(9)]]), new Map([['op-1', operation(1)]]), 10);
    expect(cache.balance('ag_000000000001')).toEqual(balance(5));
    expect(cache.operation('op-1')).toEqual(operation(2));
    cache.forget(['ag_000000000001'], ['op-1']);
    expect(cache.balance('ag_000000000001')).toBeUndefined();
    expect(cache.operation('op-1')).toBeUndefined();
  });

  it('stays within a sixteenth over capacity and drops the least recently written first', () => {
    const capacity = 160;
    const cache = new LedgerCache({ balances: capacity, operations: capacity });
    const write = (id: string, version: number) =>
      cache.remember(new Map(), new Map([[id, operation(version)]]), version);
    const present = (count: number) =>
      Array.from({ length: count }, (_, index) => `op-${index}`).filter(
        (id) => cache.operation(id) !== undefined,
      );
    for (let index = 0; index < capacity; index += 1) write(`op-${index}`, 1);
    expect(present(capacity)).toHaveLength(capacity);
    // op-0 written again is now the most recent; then 150 new ones push the oldest out.
    write('op-0', 2);
    for (let index = capacity; index < capacity + 150; index += 1) {
      write(`op-${index}`, 1);
      expect(present(capacity + 150).length).toBeLessThanOrEqual(capacity + capacity / 16);
    }
    expect(cache.operation('op-0')).toEqual(operation(2));
    expect(cache.operation('op-1')).toBeUndefined();
    for (let index = capacity; index < capacity + 150; index += 1)
      expect(cache.operation(`op-${index}`)).toBeDefined();
  });
});
