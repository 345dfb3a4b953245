import { given } from '@pf/testing';
import { fold } from '@pf/event-store';
import { fundingTransferId, nextFunding, treasuryDecider, type TreasuryFunded } from './treasury.js';

const usd = (amount: number) => BigInt(amount) * 1_000_000n;
const round1: TreasuryFunded = {
  type: 'treasury_funded',
  transferId: 'faucet-treasury-funding-1',
  round: 1,
  amountMicros: usd(1000),
};

describe('treasury decider', () => {
  it('funds the whole budget in round 1 at first start', () => {
    const state = fold(treasuryDecider, []);
    expect(nextFunding(state, usd(1000))).toEqual({
      transferId: 'faucet-treasury-funding-1',
      amountMicros: usd(1000),
    });
    given(treasuryDecider, [])
      .when({ kind: 'record_funding', transferId: fundingTransferId(1), amountMicros: usd(1000) })
      .then([round1]);
  });

  it('needs nothing when the budget is funded, and takes nothing back when it is lowered', () => {
    const state = fold(treasuryDecider, [round1]);
    expect(nextFunding(state, usd(1000))).toBeNull();
    expect(nextFunding(state, usd(10))).toBeNull();
  });

  it('tops up the difference in the next round when the budget is raised', () => {
    const state = fold(treasuryDecider, [round1]);
    expect(nextFunding(state, usd(1500))).toEqual({
      transferId: 'faucet-treasury-funding-2',
      amountMicros: usd(500),
    });
    given(treasuryDecider, [round1])
      .when({ kind: 'record_funding', transferId: fundingTransferId(2), amountMicros: usd(500) })
      .then([
        {
          type: 'treasury_funded',
          transferId: 'faucet-treasury-funding-2',
          round: 2,
          amountMicros: usd(500),
        },
      ]);
  });

  it('records a round once (a replica recording it again is a no-op) and refuses rounds out of order', () => {
    given(treasuryDecider, [round1])
      .when({ kind: 'record_funding', transferId: fundingTransferId(1), amountMicros: usd(1000) })
      .then([]);
    expect(() =>
      treasuryDecider.decide(
        { kind: 'record_funding', transferId: fundingTransferId(3), amountMicros: usd(1) },
        fold(treasuryDecider, [round1]),
      ),
    ).toThrow(/expected funding round 2/);
  });
});
