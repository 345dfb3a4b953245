import { ConfigError, loadConfig } from '@pf/platform';
import { faucetAmounts, faucetConfigSchema } from './config.js';

const amountsOf = (env: Record<string, string>) => faucetAmounts(loadConfig(faucetConfigSchema, env));

describe('faucet amounts', () => {
  it('given nothing set, then the budget is $1,000 and a claim $1, in micros', () => {
    expect(amountsOf({})).toEqual({ budgetMicros: 1_000_000_000n, claimMicros: 1_000_000n });
  });

  it('given the _MICROS settings, then they are the amounts', () => {
    expect(amountsOf({ FAUCET_BUDGET_MICROS: '5000000', FAUCET_CLAIM_MICROS: '250000' })).toEqual({
      budgetMicros: 5_000_000n,
      claimMicros: 250_000n,
    });
  });

  it('given only the deprecated _USD aliases, then they still work, read as dollars', () => {
    expect(amountsOf({ FAUCET_BUDGET_USD: '10.5', FAUCET_CLAIM_USD: '0.25' })).toEqual({
      budgetMicros: 10_500_000n,
      claimMicros: 250_000n,
    });
  });

  it('given a setting and its alias that agree, then it starts; that disagree, then it refuses naming the alias', () => {
    expect(amountsOf({ FAUCET_CLAIM_MICROS: '2000000', FAUCET_CLAIM_USD: '2' }).claimMicros).toBe(2_000_000n);
    expect(() => amountsOf({ FAUCET_CLAIM_MICROS: '2000000', FAUCET_CLAIM_USD: '3' })).toThrow(ConfigError);
    expect(() => amountsOf({ FAUCET_CLAIM_MICROS: '2000000', FAUCET_CLAIM_USD: '3' })).toThrow(
      /FAUCET_CLAIM_USD/,
    );
  });

  it('given micros that are not a positive integer or above the limit, then it refuses', () => {
    for (const bad of ['0', '-5', '1.5', '1e6', '1000000001'])
      expect(() => amountsOf({ FAUCET_CLAIM_MICROS: bad })).toThrow(/FAUCET_CLAIM_MICROS/);
  });
});
