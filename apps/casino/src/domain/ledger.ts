import { DomainError, SPLIT_REASONS, type SplitReason } from '@pf/contracts';
import type { Decider } from '@pf/contracts';
import { isAgentAccount, isKnownAccountName, mayGoNegative, SystemAccount } from './accounts.js';

/**
 * The ledger decider. One aggregate per operation (a transfer or a hold), identified by the
 * caller's id, so every command is idempotent: the same command again decides nothing new and
 * the caller reads the first outcome from the state. The balances of the accounts the
 * operation touches are part of the state the caller loads (locked) before deciding.
 */

export interface Split {
  to: string;
  amountMicros: bigint;
  /** Why this destination is paid; a closed set (see SPLIT_REASONS), it decides the entry's label. */
  reason?: SplitReason;
}

/**
 * One part of a hold posted on its own (a partial post, TigerBeetle's model): the caller names
 * it, so a retried part is recognised and answered again instead of paying twice.
 */
export interface PostedPart {
  partId: string;
  amountMicros: bigint;
  splits: Split[];
  /** The part settled the hold, returning what was left to the hold's owner. */
  final: boolean;
  /** What stayed held right after this part (0 once the hold is settled). */
  remainingAfterMicros: bigint;
}

export type LedgerCommand =
  | { kind: 'transfer'; transferId: string; from: string; to: string; amountMicros: bigint; reason: string }
  | { kind: 'hold'; holdId: string; from: string; amountMicros: bigint; reason: string }
  | {
      kind: 'post';
      holdId: string;
      splits: readonly Split[];
      /** Set: post only this part (≤ what is still held); the rest stays held. */
      partId?: string;
      /** With partId: this is the last part; what is left goes back to the owner. */
      final?: boolean;
    }
  | { kind: 'void'; holdId: string };

export type LedgerEvent =
  | {
      type: 'funds_transferred';
      transferId: string;
      from: string;
      to: string;
      amountMicros: bigint;
      reason: string;
    }
  | { type: 'hold_placed'; holdId: string; from: string; amountMicros: bigint; reason: string }
  | { type: 'hold_posted'; holdId: string; from: string; amountMicros: bigint; splits: Split[] }
  /** Returns what is still held (all of it unless parts were posted) to the owner. */
  | { type: 'hold_voided'; holdId: string; from: string; amountMicros: bigint }
  /**
   * A part of a hold paid out; `releasedMicros` is what a final part returned to the owner. The
   * hold is settled once nothing is left held.
   */
  | {
      type: 'hold_part_posted';
      holdId: string;
      partId: string;
      from: string;
      amountMicros: bigint;
      splits: Split[];
      releasedMicros: bigint;
    }
  /**
   * A hold refused for lack of funds is recorded, not just answered: the same hold id sent
   * again later (a retry that was in flight while its sender crashed and recovered) gets the
   * same refusal instead of locking money for an operation its sender already gave up on.
   */
  | { type: 'hold_rejected'; holdId: string; from: string; amountMicros: bigint; availableMicros: bigint };

export interface AccountBalance {
  /** What the account can spend now. */
  availableMicros: bigint;
  /** Locked in live holds (agents only). */
  heldMicros: bigint;
}

export type Operation =
  | { status: 'none' }
  | { status: 'transferred'; transferId: string; from: string; to: string; amountMicros: bigint }
  | {
      status: 'held' | 'posted' | 'voided';
      holdId: string;
      from: string;
      /** The amount held at first; it never changes. */
      amountMicros: bigint;
      splits?: Split[];
      /** Paid out so far (parts and a full post). */
      postedMicros?: bigint;
      /** Given back to the owner so far (a void, a final part's rest). */
      returnedMicros?: bigint;
      /** Parts posted on their own, by part id. */
      parts?: ReadonlyMap<string, PostedPart>;
    }
  | { status: 'rejected'; holdId: string; from: string; amountMicros: bigint; availableMicros: bigint };

export interface LedgerState {
  operation: Operation;
  /** Balances of the accounts this command touches; a missing account does not exist. */
  accounts: ReadonlyMap<string, AccountBalance>;
}

export const LedgerError = {
  accountNotFound: 'account_not_found',
  insufficientBalance: 'insufficient_balance',
  invalidAmount: 'invalid_amount',
  invalidSplits: 'invalid_splits',
  sameAccount: 'same_account',
  operationIdReused: 'operation_id_reused',
  holdNotFound: 'hold_not_found',
  holdAlreadyPosted: 'hold_already_posted',
  holdAlreadyVoided: 'hold_already_voided',
  partIdReused: 'part_id_reused',
} as const;

export const MAX_SPLITS = 8;

export const ledgerDecider: Decider<LedgerCommand, LedgerEvent, LedgerState> = {
  initialState: () => ({ operation: { status: 'none' }, accounts: new Map() }),
  decide: (command, state) => {
    const events = decideCommand(command, state);
    assertBooksBalance(events, state);
    assertHoldConserved(events.reduce(evolveOperation, state.operation));
    return events;
  },
  evolve: (state, event) => ({
    operation: evolveOperation(state.operation, event),
    accounts: applyToAccounts(state.accounts, event),
  }),
};

function decideCommand(command: LedgerCommand, state: LedgerState): LedgerEvent[] {
  switch (command.kind) {
    case 'transfer':
      return decideTransfer(command, state);
    case 'hold':
      return decideHold(command, state);
    case 'post':
      return decidePost(command, state);
    case 'void':
      return decideVoid(command, state);
  }
}

function decideTransfer(
  command: Extract<LedgerCommand, { kind: 'transfer' }>,
  state: LedgerState,
): LedgerEvent[] {
  const { operation } = state;
  if (operation.status === 'transferred') {
    const same =
      operation.from === command.from &&
      operation.to === command.to &&
      operation.amountMicros === command.amountMicros;
    if (same) return [];
    throw reused(command.transferId);
  }
  if (operation.status !== 'none') throw reused(command.transferId);
  requirePositive(command.amountMicros);
  if (command.from === command.to)
    throw new DomainError(LedgerError.sameAccount, 'cannot transfer to the same account');
  if (command.from === SystemAccount.escrowHolding || command.to === SystemAccount.escrowHolding) {
    throw new DomainError(LedgerError.accountNotFound, 'escrow_holding moves only through holds');
  }
  requireAccount(state, command.to);
  requireFunds(state, command.from, command.amountMicros);
  return [
    { type: 'funds_transferred', ...pick(command, ['transferId', 'from', 'to', 'amountMicros', 'reason']) },
  ];
}

function decideHold(command: Extract<LedgerCommand, { kind: 'hold' }>, state: LedgerState): LedgerEvent[] {
  const { operation } = state;
  if (operation.status === 'transferred') throw reused(command.holdId);
  if (operation.status !== 'none') {
    if (operation.from !== command.from || operation.amountMicros !== command.amountMicros)
      throw reused(command.holdId);
    if (operation.status === 'rejected') throw insufficient(operation.from, operation.availableMicros);
    return [];
  }
  requirePositive(command.amountMicros);
  if (!isAgentAccount(command.from))
    throw new DomainError(LedgerError.accountNotFound, 'holds are placed on agent accounts only');
  const balance = requireAccount(state, command.from);
  if (balance.availableMicros < command.amountMicros) {
    return [
      {
        type: 'hold_rejected',
        holdId: command.holdId,
        from: command.from,
        amountMicros: command.amountMicros,
        availableMicros: balance.availableMicros,
      },
    ];
  }
  return [
    {
      type: 'hold_placed',
      holdId: command.holdId,
      from: command.from,
      amountMicros: command.amountMicros,
      reason: command.reason,
    },
  ];
}

function decidePost(command: Extract<LedgerCommand, { kind: 'post' }>, state: LedgerState): LedgerEvent[] {
  const hold = requireHold(state, command.holdId);
  if (hold.status === 'rejected')
    throw new DomainError(
      LedgerError.holdNotFound,
      `hold ${command.holdId} was refused; there is nothing to post`,
    );
  if (command.partId !== undefined) return decidePart({ ...command, partId: command.partId }, hold, state);
  if (hold.status === 'voided')
    throw new DomainError(
      LedgerError.holdAlreadyVoided,
      `hold ${command.holdId} was voided; it cannot be posted`,
    );
  if (hold.status === 'posted') return [];
  // A full post pays out what is still held: the whole hold unless parts were posted first.
  const remainingMicros = remainingOf(hold);
  const sumMicros = validateSplits(command.splits, state);
  if (sumMicros !== remainingMicros) {
    throw new DomainError(
      LedgerError.invalidSplits,
      remainingMicros === hold.amountMicros
        ? `splits sum to ${sumMicros} micros but the hold is ${hold.amountMicros} micros`
        : `splits sum to ${sumMicros} micros but ${remainingMicros} micros are still held`,
    );
  }
  return [
    {
      type: 'hold_posted',
      holdId: hold.holdId,
      from: hold.from,
      amountMicros: remainingMicros,
      splits: nonZero(command.splits),
    },
  ];
}

/**
 * A partial post: pays `splits` (their sum, at most what is still held) and leaves the rest
 * held, or with `final` gives the rest back. The part id makes it exactly once: the same part
 * again is answered from the state, a different one under that id is refused.
 */
function decidePart(
  command: Extract<LedgerCommand, { kind: 'post' }> & { partId: string },
  hold: Extract<Operation, { status: 'held' | 'posted' | 'voided' }>,
  state: LedgerState,
): LedgerEvent[] {
  const known = hold.parts?.get(command.partId);
  if (known) {
    if (samePart(known, command)) return [];
    throw new DomainError(
      LedgerError.partIdReused,
      `part ${command.partId} of hold ${hold.holdId} was already posted with other terms`,
      { amount_micros: known.amountMicros.toString() },
    );
  }
  if (hold.status === 'voided')
    throw new DomainError(
      LedgerError.holdAlreadyVoided,
      `hold ${hold.holdId} was voided; nothing is left to post`,
    );
  if (hold.status === 'posted')
    throw new DomainError(
      LedgerError.holdAlreadyPosted,
      `hold ${hold.holdId} is settled; nothing is left to post`,
    );
  const remainingMicros = remainingOf(hold);
  const partMicros = validateSplits(command.splits, state);
  if (partMicros <= 0n || partMicros > remainingMicros) {
    throw new DomainError(
      LedgerError.invalidSplits,
      `a part must be more than 0 and at most the ${remainingMicros} micros still held; the splits sum to ${partMicros}`,
      { remaining_micros: remainingMicros.toString() },
    );
  }
  return [
    {
      type: 'hold_part_posted',
      holdId: hold.holdId,
      partId: command.partId,
      from: hold.from,
      amountMicros: partMicros,
      splits: nonZero(command.splits),
      releasedMicros: command.final === true ? remainingMicros - partMicros : 0n,
    },
  ];
}

/** The same part again: same amount to the same destinations, same finality. */
function samePart(known: PostedPart, command: { splits: readonly Split[]; final?: boolean }): boolean {
  const splits = nonZero(command.splits);
  return (
    known.final === (command.final === true) &&
    known.splits.length === splits.length &&
    known.splits.every(
      (split, index) => split.to === splits[index]!.to && split.amountMicros === splits[index]!.amountMicros,
    )
  );
}

function nonZero(splits: readonly Split[]): Split[] {
  return splits.filter((split) => split.amountMicros > 0n).map((split) => ({ ...split }));
}

/** What a hold still holds: its amount less what was paid out or given back. */
export function remainingOf(hold: {
  amountMicros: bigint;
  postedMicros?: bigint;
  returnedMicros?: bigint;
}): bigint {
  return hold.amountMicros - (hold.postedMicros ?? 0n) - (hold.returnedMicros ?? 0n);
}

function decideVoid(command: Extract<LedgerCommand, { kind: 'void' }>, state: LedgerState): LedgerEvent[] {
  const hold = requireHold(state, command.holdId);
  if (hold.status === 'posted')
    throw new DomainError(
      LedgerError.holdAlreadyPosted,
      `hold ${command.holdId} was posted; it cannot be voided`,
    );
  // A refused hold holds nothing: voiding it is already done.
  if (hold.status === 'voided' || hold.status === 'rejected') return [];
  // After posted parts, a void gives back what is still held.
  return [{ type: 'hold_voided', holdId: hold.holdId, from: hold.from, amountMicros: remainingOf(hold) }];
}

/** Checks each split (count, sign, destination) and returns their sum. */
function validateSplits(splits: readonly Split[], state: LedgerState): bigint {
  if (splits.length === 0 || splits.length > MAX_SPLITS) {
    throw new DomainError(LedgerError.invalidSplits, `a post needs between 1 and ${MAX_SPLITS} splits`);
  }
  let sumMicros = 0n;
  for (const split of splits) {
    if (split.amountMicros < 0n)
      throw new DomainError(LedgerError.invalidSplits, 'split amounts cannot be negative');
    if (split.reason !== undefined && !SPLIT_REASONS.includes(split.reason))
      throw new DomainError(LedgerError.invalidSplits, `unknown split reason ${String(split.reason)}`);
    if (split.to === SystemAccount.escrowHolding || split.to === SystemAccount.world) {
      throw new DomainError(LedgerError.invalidSplits, `cannot post a hold to ${split.to}`);
    }
    requireAccount(state, split.to);
    sumMicros += split.amountMicros;
  }
  return sumMicros;
}

function requireHold(state: LedgerState, holdId: string): Extract<Operation, { holdId: string }> {
  const { operation } = state;
  if (operation.status === 'none') throw new DomainError(LedgerError.holdNotFound, `no hold ${holdId}`);
  if (operation.status === 'transferred') throw reused(holdId);
  return operation;
}

function requirePositive(amountMicros: bigint): void {
  if (amountMicros <= 0n) throw new DomainError(LedgerError.invalidAmount, 'amount must be positive');
}

function requireAccount(state: LedgerState, account: string): AccountBalance {
  const balance = state.accounts.get(account);
  if (!balance || !isKnownAccountName(account))
    throw new DomainError(LedgerError.accountNotFound, `no account ${account}`);
  return balance;
}

function requireFunds(state: LedgerState, account: string, amountMicros: bigint): void {
  const balance = requireAccount(state, account);
  if (!mayGoNegative(account) && balance.availableMicros < amountMicros)
    throw insufficient(account, balance.availableMicros);
}

export function insufficient(account: string, availableMicros: bigint): DomainError {
  return new DomainError(LedgerError.insufficientBalance, `insufficient balance in ${account}`, {
    available_micros: availableMicros.toString(),
  });
}

function reused(id: string): DomainError {
  return new DomainError(
    LedgerError.operationIdReused,
    `id ${id} was already used for a different operation`,
  );
}

function pick<T, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, value[key]])) as Pick<T, K>;
}

function evolveOperation(operation: Operation, event: LedgerEvent): Operation {
  switch (event.type) {
    case 'funds_transferred':
      return {
        status: 'transferred',
        transferId: event.transferId,
        from: event.from,
        to: event.to,
        amountMicros: event.amountMicros,
      };
    case 'hold_placed':
      return { status: 'held', holdId: event.holdId, from: event.from, amountMicros: event.amountMicros };
    case 'hold_posted': {
      // A full post pays what was still held; the hold keeps its original amount.
      const hold = holdOf(operation, event);
      return {
        ...hold,
        status: 'posted',
        splits: event.splits,
        postedMicros: (hold.postedMicros ?? 0n) + event.amountMicros,
      };
    }
    case 'hold_voided': {
      const hold = holdOf(operation, event);
      return { ...hold, status: 'voided', returnedMicros: (hold.returnedMicros ?? 0n) + event.amountMicros };
    }
    case 'hold_part_posted':
      return evolvePart(holdOf(operation, event), event);
    case 'hold_rejected':
      return {
        status: 'rejected',
        holdId: event.holdId,
        from: event.from,
        amountMicros: event.amountMicros,
        availableMicros: event.availableMicros,
      };
  }
  return operation;
}

type HoldOperation = Extract<Operation, { status: 'held' | 'posted' | 'voided' }>;

/** The hold an event settles; a stream read without its hold_placed (never in the log) starts from the event. */
function holdOf(
  operation: Operation,
  event: { holdId: string; from: string; amountMicros: bigint },
): HoldOperation {
  if (operation.status === 'held' || operation.status === 'posted' || operation.status === 'voided')
    return operation;
  return { status: 'held', holdId: event.holdId, from: event.from, amountMicros: event.amountMicros };
}

function evolvePart(
  hold: HoldOperation,
  event: Extract<LedgerEvent, { type: 'hold_part_posted' }>,
): Operation {
  const postedMicros = (hold.postedMicros ?? 0n) + event.amountMicros;
  const returnedMicros = (hold.returnedMicros ?? 0n) + event.releasedMicros;
  const remainingAfterMicros = remainingOf({ amountMicros: hold.amountMicros, postedMicros, returnedMicros });
  const parts = new Map(hold.parts ?? []);
  parts.set(event.partId, {
    partId: event.partId,
    amountMicros: event.amountMicros,
    splits: event.splits,
    final: event.releasedMicros > 0n || remainingAfterMicros === 0n,
    remainingAfterMicros,
  });
  return {
    ...hold,
    status: remainingAfterMicros === 0n ? 'posted' : 'held',
    postedMicros,
    returnedMicros,
    parts,
  };
}

/**
 * A hold never pays out or gives back more than it holds: paid + given back + still held is its
 * amount, nothing is negative, and a settled hold holds nothing. A failure is a decider bug.
 */
function assertHoldConserved(operation: Operation): void {
  if (operation.status !== 'held' && operation.status !== 'posted' && operation.status !== 'voided') return;
  const remainingMicros = remainingOf(operation);
  const partsMicros = [...(operation.parts?.values() ?? [])].reduce(
    (sum, part) => sum + part.amountMicros,
    0n,
  );
  const broken =
    remainingMicros < 0n ||
    (operation.postedMicros ?? 0n) < partsMicros ||
    (operation.returnedMicros ?? 0n) < 0n ||
    (operation.status === 'held' ? remainingMicros === 0n : remainingMicros !== 0n);
  if (broken)
    throw new Error(
      `ledger invariant: hold ${operation.holdId} of ${operation.amountMicros} micros is ${operation.status} with ${remainingMicros} left (posted ${operation.postedMicros ?? 0n}, returned ${operation.returnedMicros ?? 0n})`,
    );
}

/** One double-entry posting: the change of one account's spendable and held balance. */
export interface Posting {
  account: string;
  availableDeltaMicros: bigint;
  heldDeltaMicros: bigint;
}

/**
 * The postings of an event. A hold moves money from the agent's available balance to
 * `escrow_holding` (and marks it held on the agent); a post pays the splits out of
 * `escrow_holding`; a void returns it; a part pays its splits (and a final part returns the
 * rest). The first two postings are always the owner's and escrow_holding's (entries.ts relies
 * on it). Each event's postings sum to zero.
 */
export function postingsOf(event: LedgerEvent): Posting[] {
  switch (event.type) {
    case 'funds_transferred':
      return [posting(event.from, -event.amountMicros), posting(event.to, event.amountMicros)];
    case 'hold_placed':
      return [
        {
          account: event.from,
          availableDeltaMicros: -event.amountMicros,
          heldDeltaMicros: event.amountMicros,
        },
        posting(SystemAccount.escrowHolding, event.amountMicros),
      ];
    case 'hold_posted':
      return [
        { account: event.from, availableDeltaMicros: 0n, heldDeltaMicros: -event.amountMicros },
        posting(SystemAccount.escrowHolding, -event.amountMicros),
        ...event.splits.map((split) => posting(split.to, split.amountMicros)),
      ];
    case 'hold_part_posted': {
      const settledMicros = event.amountMicros + event.releasedMicros;
      return [
        { account: event.from, availableDeltaMicros: event.releasedMicros, heldDeltaMicros: -settledMicros },
        posting(SystemAccount.escrowHolding, -settledMicros),
        ...event.splits.map((split) => posting(split.to, split.amountMicros)),
      ];
    }
    case 'hold_voided':
      return [
        {
          account: event.from,
          availableDeltaMicros: event.amountMicros,
          heldDeltaMicros: -event.amountMicros,
        },
        posting(SystemAccount.escrowHolding, -event.amountMicros),
      ];
    case 'hold_rejected':
      return [];
  }
}

function posting(account: string, availableDeltaMicros: bigint): Posting {
  return { account, availableDeltaMicros, heldDeltaMicros: 0n };
}

function applyToAccounts(
  accounts: ReadonlyMap<string, AccountBalance>,
  event: LedgerEvent,
): ReadonlyMap<string, AccountBalance> {
  const next = new Map(accounts);
  for (const { account, availableDeltaMicros, heldDeltaMicros } of postingsOf(event)) {
    const balance = next.get(account) ?? { availableMicros: 0n, heldMicros: 0n };
    next.set(account, {
      availableMicros: balance.availableMicros + availableDeltaMicros,
      heldMicros: balance.heldMicros + heldDeltaMicros,
    });
  }
  return next;
}

/**
 * The invariants, asserted after every decision: each event's postings sum to zero (the
 * books balance) and no account that may not go negative does, holds included. A failure
 * here is a bug in the decider, never a user error.
 */
export function assertBooksBalance(events: readonly LedgerEvent[], state: LedgerState): void {
  let accounts = state.accounts;
  for (const event of events) {
    const sumMicros = postingsOf(event).reduce((sum, entry) => sum + entry.availableDeltaMicros, 0n);
    if (sumMicros !== 0n)
      throw new Error(`ledger invariant: ${event.type} postings sum to ${sumMicros}, not 0`);
    accounts = applyToAccounts(accounts, event);
  }
  for (const [account, balance] of accounts) {
    if (mayGoNegative(account) || account === SystemAccount.escrowHolding) continue;
    if (balance.availableMicros < 0n || balance.heldMicros < 0n) {
      throw new Error(
        `ledger invariant: ${account} would go negative (${balance.availableMicros}/${balance.heldMicros})`,
      );
    }
  }
}
