import fc from 'fast-check';
import { given } from '@pf/testing';
import { fold } from '@pf/event-store';
import { SystemAccount } from './accounts.js';
import {
  ledgerDecider,
  postingsOf,
  type AccountBalance,
  type LedgerCommand,
  type LedgerEvent,
  type LedgerState,
} from './ledger.js';

const alice = 'ag_00000000000a';
const bob = 'ag_00000000000b';
const carol = 'ag_00000000000c';
const usd = (amount: number) => BigInt(Math.round(amount * 1_000_000));

function balances(entries: Record<string, [number, number?]>): Map<string, AccountBalance> {
  return new Map(
    Object.entries(entries).map(([account, [available, held]]) => [
      account,
      { availableMicros: usd(available), heldMicros: usd(held ?? 0) },
    ]),
  );
}

/** A decider bound to fixed account balances, as the command handler loads them. */
function withAccounts(accounts: Map<string, AccountBalance>) {
  return { ...ledgerDecider, initialState: (): LedgerState => ({ operation: { status: 'none' }, accounts }) };
}

const funded = balances({
  [alice]: [10],
  [bob]: [0],
  [carol]: [0],
  world: [-10],
  house_revenue: [0],
  escrow_holding: [0],
});
const hold = (amount = 5): LedgerEvent => ({
  type: 'hold_placed',
  holdId: 'h1',
  from: alice,
  amountMicros: usd(amount),
  reason: 'escrow',
});

describe('ledger decider: transfers', () => {
  it('moves money between accounts', () => {
    given(withAccounts(funded), [])
      .when({ kind: 'transfer', transferId: 't1', from: alice, to: bob, amountMicros: usd(4), reason: 'pay' })
      .then([
        {
          type: 'funds_transferred',
          transferId: 't1',
          from: alice,
          to: bob,
          amountMicros: usd(4),
          reason: 'pay',
        },
      ]);
  });

  it('lets world go negative (deposits) but no agent', () => {
    given(withAccounts(funded), [])
      .when({
        kind: 'transfer',
        transferId: 'd1',
        from: 'world',
        to: alice,
        amountMicros: usd(1000),
        reason: 'deposit',
      })
      .then([
        {
          type: 'funds_transferred',
          transferId: 'd1',
          from: 'world',
          to: alice,
          amountMicros: usd(1000),
          reason: 'deposit',
        },
      ]);
    given(withAccounts(funded), [])
      .when({
        kind: 'transfer',
        transferId: 't1',
        from: alice,
        to: bob,
        amountMicros: usd(10.000001),
        reason: 'pay',
      })
      .thenThrows('insufficient_balance');
  });

  it('is idempotent on its id: the same transfer again decides nothing', () => {
    const first: LedgerEvent = {
      type: 'funds_transferred',
      transferId: 't1',
      from: alice,
      to: bob,
      amountMicros: usd(4),
      reason: 'pay',
    };
    given(withAccounts(funded), [first])
      .when({ kind: 'transfer', transferId: 't1', from: alice, to: bob, amountMicros: usd(4), reason: 'pay' })
      .then([]);
    given(withAccounts(funded), [first])
      .when({ kind: 'transfer', transferId: 't1', from: alice, to: bob, amountMicros: usd(5), reason: 'pay' })
      .thenThrows('operation_id_reused');
  });

  it.each([
    [{ amountMicros: 0n }, 'invalid_amount'],
    [{ amountMicros: -1n }, 'invalid_amount'],
    [{ to: alice }, 'same_account'],
    [{ to: 'ag_0000000000ff' }, 'account_not_found'],
    [{ from: 'ag_0000000000ff' }, 'account_not_found'],
  ])('refuses %j with %s', (change, code) => {
    const command = {
      kind: 'transfer',
      transferId: 't1',
      from: alice,
      to: bob,
      amountMicros: usd(1),
      reason: 'pay',
      ...change,
    } as LedgerCommand;
    given(withAccounts(funded), []).when(command).thenThrows(code);
  });
});

describe('ledger decider: holds', () => {
  it('places a hold that takes the amount out of the available balance', () => {
    const [event] = given(withAccounts(funded), [])
      .when({ kind: 'hold', holdId: 'h1', from: alice, amountMicros: usd(5), reason: 'escrow' })
      .then([hold()]);
    const state = ledgerDecider.evolve(withAccounts(funded).initialState(), event!);
    expect(state.accounts.get(alice)).toEqual({ availableMicros: usd(5), heldMicros: usd(5) });
  });

  it('records a refused hold above the available balance (counting earlier holds), moving nothing', () => {
    const refused: LedgerEvent = {
      type: 'hold_rejected',
      holdId: 'h2',
      from: alice,
      amountMicros: usd(4),
      availableMicros: usd(3),
    };
    given(withAccounts(balances({ [alice]: [3, 7] })), [])
      .when({ kind: 'hold', holdId: 'h2', from: alice, amountMicros: usd(4), reason: 'escrow' })
      .then([refused]);
    expect(postingsOf(refused)).toEqual([]);
  });

  it('keeps refusing a refused hold id even once the funds are there, and voiding it is a no-op', () => {
    const refused: LedgerEvent = {
      type: 'hold_rejected',
      holdId: 'h2',
      from: alice,
      amountMicros: usd(4),
      availableMicros: usd(3),
    };
    given(withAccounts(funded), [refused])
      .when({ kind: 'hold', holdId: 'h2', from: alice, amountMicros: usd(4), reason: 'escrow' })
      .thenThrows('insufficient_balance');
    given(withAccounts(funded), [refused]).when({ kind: 'void', holdId: 'h2' }).then([]);
    given(withAccounts(funded), [refused])
      .when({ kind: 'post', holdId: 'h2', splits: [{ to: bob, amountMicros: usd(4) }] })
      .thenThrows('hold_not_found');
  });

  it('posts to several destinations that sum exactly to the hold', () => {
    const splits = [
      { to: bob, amountMicros: 4_950_000n },
      { to: SystemAccount.houseRevenue, amountMicros: 42_500n },
      { to: carol, amountMicros: 7_500n },
    ];
    given(withAccounts(funded), [hold()])
      .when({ kind: 'post', holdId: 'h1', splits })
      .then([{ type: 'hold_posted', holdId: 'h1', from: alice, amountMicros: usd(5), splits }]);
  });

  it.each([
    [[{ to: bob, amountMicros: 4_999_999n }], 'invalid_splits'],
    [[{ to: bob, amountMicros: 5_000_001n }], 'invalid_splits'],
    [
      [
        { to: bob, amountMicros: 6_000_000n },
        { to: carol, amountMicros: -1_000_000n },
      ],
      'invalid_splits',
    ],
    [[], 'invalid_splits'],
    [[{ to: 'world', amountMicros: 5_000_000n }], 'invalid_splits'],
    [[{ to: 'ag_0000000000ff', amountMicros: 5_000_000n }], 'account_not_found'],
  ])('refuses splits %j', (splits, code) => {
    given(withAccounts(funded), [hold()]).when({ kind: 'post', holdId: 'h1', splits }).thenThrows(code);
  });

  it('posting or voiding twice returns the first outcome; the other is refused', () => {
    const posted: LedgerEvent = {
      type: 'hold_posted',
      holdId: 'h1',
      from: alice,
      amountMicros: usd(5),
      splits: [{ to: bob, amountMicros: usd(5) }],
    };
    const voided: LedgerEvent = { type: 'hold_voided', holdId: 'h1', from: alice, amountMicros: usd(5) };
    given(withAccounts(funded), [hold(), posted])
      .when({ kind: 'post', holdId: 'h1', splits: [{ to: carol, amountMicros: usd(5) }] })
      .then([]);
    given(withAccounts(funded), [hold(), posted])
      .when({ kind: 'void', holdId: 'h1' })
      .thenThrows('hold_already_posted');
    given(withAccounts(funded), [hold(), voided]).when({ kind: 'void', holdId: 'h1' }).then([]);
    given(withAccounts(funded), [hold(), voided])
      .when({ kind: 'post', holdId: 'h1', splits: [{ to: bob, amountMicros: usd(5) }] })
      .thenThrows('hold_already_voided');
  });

  it('refuses post and void of an unknown hold, and a hold id reused as a transfer', () => {
    given(withAccounts(funded), []).when({ kind: 'void', holdId: 'nope' }).thenThrows('hold_not_found');
    given(withAccounts(funded), [hold()])
      .when({ kind: 'transfer', transferId: 'h1', from: alice, to: bob, amountMicros: 1n, reason: 'x' })
      .thenThrows('operation_id_reused');
  });
});

describe('ledger decider: partial posts (parts of a hold, each exactly once)', () => {
  // Given alice's $5 hold h1.
  const part = (
    partId: string,
    amount: number,
    extra: Partial<Extract<LedgerEvent, { type: 'hold_part_posted' }>> = {},
  ): LedgerEvent => ({
    type: 'hold_part_posted',
    holdId: 'h1',
    partId,
    from: alice,
    amountMicros: usd(amount),
    splits: [{ to: bob, amountMicros: usd(amount), reason: 'payout' }],
    releasedMicros: 0n,
    ...extra,
  });
  const postPart = (partId: string, amount: number, final?: boolean): LedgerCommand => ({
    kind: 'post',
    holdId: 'h1',
    partId,
    splits: [{ to: bob, amountMicros: usd(amount), reason: 'payout' }],
    ...(final === undefined ? {} : { final }),
  });
  const stateAfter = (events: LedgerEvent[]) => fold(withAccounts(funded), events);

  it('posts part of a hold; the rest stays held', () => {
    given(withAccounts(funded), [hold()])
      .when(postPart('p1', 2))
      .then([part('p1', 2)]);
    const state = stateAfter([hold(), part('p1', 2)]);
    expect(state.operation).toMatchObject({ status: 'held', postedMicros: usd(2) });
    expect(state.accounts.get(alice)).toEqual({ availableMicros: usd(5), heldMicros: usd(3) });
    expect(state.accounts.get(bob)).toEqual({ availableMicros: usd(2), heldMicros: 0n });
    expect(state.accounts.get(SystemAccount.escrowHolding)!.availableMicros).toBe(usd(3));
  });

  it('a part that posts the remainder settles the hold', () => {
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when(postPart('p2', 3))
      .then([part('p2', 3)]);
    expect(stateAfter([hold(), part('p1', 2), part('p2', 3)]).operation).toMatchObject({ status: 'posted' });
  });

  it('a final part settles the hold and gives the rest back to the owner', () => {
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when(postPart('p2', 1, true))
      .then([part('p2', 1, { releasedMicros: usd(2) })]);
    const state = stateAfter([hold(), part('p1', 2), part('p2', 1, { releasedMicros: usd(2) })]);
    expect(state.operation).toMatchObject({ status: 'posted', postedMicros: usd(3), returnedMicros: usd(2) });
    expect(state.accounts.get(alice)).toEqual({ availableMicros: usd(7), heldMicros: 0n });
    expect(state.accounts.get(SystemAccount.escrowHolding)!.availableMicros).toBe(0n);
  });

  it('a void after parts gives back only what is still held', () => {
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when({ kind: 'void', holdId: 'h1' })
      .then([{ type: 'hold_voided', holdId: 'h1', from: alice, amountMicros: usd(3) }]);
  });

  it('a full post after parts must pay exactly what is still held', () => {
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when({ kind: 'post', holdId: 'h1', splits: [{ to: carol, amountMicros: usd(5) }] })
      .thenThrows('invalid_splits');
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when({ kind: 'post', holdId: 'h1', splits: [{ to: carol, amountMicros: usd(3) }] })
      .then([
        {
          type: 'hold_posted',
          holdId: 'h1',
          from: alice,
          amountMicros: usd(3),
          splits: [{ to: carol, amountMicros: usd(3) }],
        },
      ]);
  });

  it('a retried part decides nothing, even after later parts or a void; other terms under its id are refused', () => {
    const voided: LedgerEvent = { type: 'hold_voided', holdId: 'h1', from: alice, amountMicros: usd(3) };
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when(postPart('p1', 2))
      .then([]);
    given(withAccounts(funded), [hold(), part('p1', 2), part('p2', 3)])
      .when(postPart('p1', 2))
      .then([]);
    given(withAccounts(funded), [hold(), part('p1', 2), voided])
      .when(postPart('p1', 2))
      .then([]);
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when(postPart('p1', 1))
      .thenThrows('part_id_reused');
    given(withAccounts(funded), [hold(), part('p1', 2)])
      .when(postPart('p1', 2, true))
      .thenThrows('part_id_reused');
  });

  it.each([
    ['more than is still held', [part('p1', 2)], postPart('p2', 3.000001), 'invalid_splits'],
    ['nothing', [], postPart('p1', 0), 'invalid_splits'],
    [
      'a new part of a voided hold',
      [{ type: 'hold_voided', holdId: 'h1', from: alice, amountMicros: usd(5) }],
      postPart('p1', 1),
      'hold_already_voided',
    ],
    ['a new part of a settled hold', [part('p1', 5)], postPart('p2', 1), 'hold_already_posted'],
  ] as Array<[string, LedgerEvent[], LedgerCommand, string]>)(
    'refuses a part of %s',
    (_what, history, command, code) => {
      given(withAccounts(funded), [hold(), ...history])
        .when(command)
        .thenThrows(code);
    },
  );

  it('refuses a split reason outside the closed set', () => {
    given(withAccounts(funded), [hold()])
      .when({
        kind: 'post',
        holdId: 'h1',
        splits: [{ to: bob, amountMicros: usd(5), reason: 'bonus' as never }],
      })
      .thenThrows('invalid_splits');
  });
});

describe('ledger decider: invariants under random command sequences', () => {
  const agents = [alice, bob, carol];
  const account = fc.constantFrom(
    ...agents,
    'world',
    SystemAccount.houseRevenue,
    SystemAccount.escrowHolding,
  );
  const amount = fc.bigInt({ min: -2n, max: 6_000_000n });
  const id = fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5', 'o6');
  const command: fc.Arbitrary<LedgerCommand> = fc.oneof(
    fc.record({
      kind: fc.constant('transfer' as const),
      transferId: id,
      from: account,
      to: account,
      amountMicros: amount,
      reason: fc.constant('r'),
    }),
    fc.record({
      kind: fc.constant('hold' as const),
      holdId: id,
      from: account,
      amountMicros: amount,
      reason: fc.constant('r'),
    }),
    fc.record({
      kind: fc.constant('post' as const),
      holdId: id,
      splits: fc.array(fc.record({ to: account, amountMicros: amount }), { minLength: 1, maxLength: 3 }),
    }),
    fc.record({ kind: fc.constant('void' as const), holdId: id }),
    fc.record({
      kind: fc.constant('post' as const),
      holdId: id,
      partId: fc.constantFrom('p1', 'p2', 'p3'),
      final: fc.boolean(),
      splits: fc.array(fc.record({ to: account, amountMicros: fc.bigInt({ min: -1n, max: 3_000_000n }) }), {
        minLength: 1,
        maxLength: 3,
      }),
    }),
  );

  it('keeps the sum of all accounts at zero and never lets an agent go negative', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        let accounts: ReadonlyMap<string, AccountBalance> = balances({
          [alice]: [5],
          [bob]: [1],
          [carol]: [0],
          world: [-6],
          house_revenue: [0],
          escrow_holding: [0],
        });
        const histories = new Map<string, LedgerEvent[]>();
        for (const cmd of commands) {
          const opId = cmd.kind === 'transfer' ? cmd.transferId : cmd.holdId;
          const history = histories.get(opId) ?? [];
          const state: LedgerState = { operation: fold(ledgerDecider, history).operation, accounts };
          let events: LedgerEvent[] = [];
          try {
            events = ledgerDecider.decide(cmd, state);
          } catch (error) {
            expect((error as { code?: string }).code).toEqual(expect.any(String));
            continue;
          }
          histories.set(opId, [...history, ...events]);
          accounts = events.reduce((s, event) => ledgerDecider.evolve(s, event), state).accounts;
        }
        let total = 0n;
        for (const [name, balance] of accounts) {
          total += balance.availableMicros;
          if (name.startsWith('ag_')) {
            expect(balance.availableMicros >= 0n && balance.heldMicros >= 0n).toBe(true);
          }
        }
        expect(total).toBe(0n);
        const heldTotal = agents.reduce((sum, agent) => sum + accounts.get(agent)!.heldMicros, 0n);
        expect(accounts.get(SystemAccount.escrowHolding)!.availableMicros).toBe(heldTotal);
      }),
      { numRuns: 500 },
    );
  });

  it('every event posts a zero-sum set of entries', () => {
    expect(postingsOf(hold()).reduce((sum, entry) => sum + entry.availableDeltaMicros, 0n)).toBe(0n);
  });
});
