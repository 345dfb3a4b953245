import { fold } from '@pf/contracts';
import { deadlineOf, deadlineRuns, escrowDecider, type EscrowEvent, type EscrowState } from './escrow.js';

const id = 'esc_0123456789abcdef';
const creator = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const amountMicros = 5_000_000n;

const opened: EscrowEvent = {
  type: 'opened',
  escrowId: id,
  creatorId: creator,
  counterpartyId: worker,
  amountMicros,
  commissionBps: 100,
  referrerId: null,
  description: 'Analyze BTC price correlation with gold',
  timeoutMs: 4 * 3_600_000,
};
const funded: EscrowEvent = { type: 'funded', escrowId: id, holdId: id, amountMicros };
const completed: EscrowEvent = { type: 'completed', escrowId: id, by: worker, resultSummary: 'done' };

/** The state after `history`, as the decider folds it. */
const after = (...history: EscrowEvent[]): EscrowState => fold(escrowDecider, history);

describe('the escrow deadline (computed once, here)', () => {
  it('given an escrow funded at T with a four hour timeout, when its deadline is asked, then it is T + 4 h to the millisecond', () => {
    const fundedAt = new Date('2026-12-05T10:00:00.123Z');
    expect(deadlineOf(fundedAt, 4 * 3_600_000)).toEqual(new Date('2026-12-05T14:00:00.123Z'));
  });

  it('given the longest timeout (720 h), when its deadline is asked, then it is thirty days later', () => {
    const fundedAt = new Date('2026-01-01T00:00:00.000Z');
    expect(deadlineOf(fundedAt, 720 * 3_600_000).toISOString()).toBe('2026-01-31T00:00:00.000Z');
  });

  it('given a funded or completed escrow, when asked whether its deadline runs, then yes', () => {
    expect(deadlineRuns(after(opened, funded))).toBe(true);
    expect(deadlineRuns(after(opened, funded, completed))).toBe(true);
  });

  it('given work sent back by the evaluator, when asked, then the deadline still runs (funded again)', () => {
    const evaluated: EscrowEvent = { ...opened, evaluatorId: 'ag_00000000000c', evaluatorFeeBps: 0 };
    const sentBack: EscrowEvent = {
      type: 'evaluation_rejected',
      escrowId: id,
      by: 'ag_00000000000c',
      reason: 'not yet',
    };
    expect(deadlineRuns(after(evaluated, funded, completed, sentBack))).toBe(true);
  });

  it('given an escrow not yet funded, disputed or settled, when asked, then no deadline runs', () => {
    expect(deadlineRuns(after())).toBe(false);
    expect(deadlineRuns(after(opened))).toBe(false);
    expect(
      deadlineRuns(after(opened, funded, { type: 'disputed', escrowId: id, by: creator, reason: null })),
    ).toBe(false);
    expect(
      deadlineRuns(
        after(opened, funded, { type: 'refunded', escrowId: id, trigger: 'timeout', amountMicros }),
      ),
    ).toBe(false);
  });

  it('given the states where the deadline runs, when the deadline passes, then expire decides something exactly there', () => {
    for (const history of [
      [opened, funded],
      [opened, funded, completed],
    ]) {
      const state = after(...history);
      expect(escrowDecider.decide({ kind: 'expire' }, state).length > 0).toBe(deadlineRuns(state));
    }
    const disputed = after(opened, funded, { type: 'disputed', escrowId: id, by: creator, reason: null });
    expect(escrowDecider.decide({ kind: 'expire' }, disputed)).toEqual([]);
  });
});
