import { isKnownAccountName, isMaterialized, SYSTEM_ACCOUNTS, SystemAccount } from './accounts.js';

describe('accounts with a balance row', () => {
  it('given an agent account, then it has a balance row (its debits are checked under the row lock)', () => {
    expect(isMaterialized('ag_00000000000a')).toBe(true);
  });

  it('given the system accounts, then only the faucet treasury has a balance row', () => {
    expect(SYSTEM_ACCOUNTS.filter(isMaterialized)).toEqual([SystemAccount.faucetTreasury]);
  });

  it('given a name that is no account, then it has no row (the decider refuses it)', () => {
    for (const name of ['ag_XYZ', 'ag_00000000000a0', 'nobody', '']) {
      expect(isKnownAccountName(name)).toBe(false);
      expect(isMaterialized(name)).toBe(false);
    }
  });
});
