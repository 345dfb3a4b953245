import { SystemAccount } from './accounts.js';
import { depositCommand, depositTransferId } from './deposits.js';

describe('deposit ids', () => {
  it('given a reference, when the deposit is built, then it is a transfer from world named after the reference', () => {
    expect(
      depositCommand({ agentId: 'ag_00000000000a', amountMicros: 12_500_000n, reference: 'ops-1' }),
    ).toEqual({
      kind: 'transfer',
      transferId: 'deposit:ops-1',
      from: SystemAccount.world,
      to: 'ag_00000000000a',
      amountMicros: 12_500_000n,
      reason: 'deposit',
    });
  });

  it('given the same reference twice, then both name the same transfer (a repeat is answered, not paid twice)', () => {
    const first = depositCommand({ agentId: 'ag_00000000000a', amountMicros: 1n, reference: 'r-7' });
    const again = depositCommand({ agentId: 'ag_00000000000b', amountMicros: 2n, reference: 'r-7' });
    expect(again.transferId).toBe(first.transferId);
    expect(depositTransferId('r-8')).not.toBe(first.transferId);
  });
});
