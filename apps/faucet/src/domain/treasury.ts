import type { Decider } from '@pf/contracts';

/**
 * The faucet treasury's funding: money moves from `world` to `faucet_treasury` in numbered
 * rounds, each a ledger transfer with a fixed id (`faucet-treasury-funding-<round>`), so every
 * start of every replica can send the next round safely; the ledger moves it once. Round 1 is
 * the first start's budget; raising the configured budget later adds a round for the
 * difference. The faucet records a round only after the ledger confirmed it.
 */

export const TREASURY_STREAM = 'treasury';

export interface TreasuryState {
  fundedMicros: bigint;
  rounds: number;
  transferIds: readonly string[];
}

export interface RecordFunding {
  kind: 'record_funding';
  transferId: string;
  amountMicros: bigint;
}

export interface TreasuryFunded {
  type: 'treasury_funded';
  transferId: string;
  round: number;
  amountMicros: bigint;
}

export function fundingTransferId(round: number): string {
  return `faucet-treasury-funding-${round}`;
}

/** The transfer that brings the treasury up to the budget, or null when it is there already. */
export function nextFunding(
  state: TreasuryState,
  budgetMicros: bigint,
): { transferId: string; amountMicros: bigint } | null {
  if (state.fundedMicros >= budgetMicros) return null;
  return { transferId: fundingTransferId(state.rounds + 1), amountMicros: budgetMicros - state.fundedMicros };
}

export const treasuryDecider: Decider<RecordFunding, TreasuryFunded, TreasuryState> = {
  initialState: () => ({ fundedMicros: 0n, rounds: 0, transferIds: [] }),
  decide: (command, state) => {
    if (state.transferIds.includes(command.transferId)) return [];
    const round = state.rounds + 1;
    if (command.transferId !== fundingTransferId(round)) {
      throw new Error(`treasury decider: expected funding round ${round}, got ${command.transferId}`);
    }
    if (command.amountMicros <= 0n) throw new Error('treasury decider: a funding round must be positive');
    return [
      { type: 'treasury_funded', transferId: command.transferId, round, amountMicros: command.amountMicros },
    ];
  },
  evolve: (state, event) => ({
    fundedMicros: state.fundedMicros + event.amountMicros,
    rounds: event.round,
    transferIds: [...state.transferIds, event.transferId],
  }),
};
