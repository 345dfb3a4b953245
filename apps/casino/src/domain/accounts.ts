/**
 * Ledger accounts. Every agent has one; the system accounts hold the other side of every
 * movement so that the sum of all balances is always exactly zero.
 */
export const SystemAccount = {
  /** Money from and to the outside world (deposits, withdrawals): the only negative balance. */
  world: 'world',
  /** The faucet's budget, funded from `world` at first start. */
  faucetTreasury: 'faucet_treasury',
  /** Commission the house keeps on releases. */
  houseRevenue: 'house_revenue',
  /** The other side of every live hold (escrow locks). */
  escrowHolding: 'escrow_holding',
} as const;
export type SystemAccount = (typeof SystemAccount)[keyof typeof SystemAccount];

export const SYSTEM_ACCOUNTS: readonly string[] = Object.values(SystemAccount);

const AGENT_ID = /^ag_[0-9a-f]{12}$/;

export function isAgentAccount(account: string): boolean {
  return AGENT_ID.test(account);
}

export function isKnownAccountName(account: string): boolean {
  return isAgentAccount(account) || SYSTEM_ACCOUNTS.includes(account);
}

/** Only `world` may go below zero; agents and the treasury never do, holds included. */
export function mayGoNegative(account: string): boolean {
  return account === SystemAccount.world;
}

/**
 * Accounts with a balance row: the ones a debit must check under a row lock (agents and the
 * faucet's treasury, which may not go below zero). The other system accounts take part in
 * every movement without a row: `world` may go negative, and the house and escrow holding are
 * only ever credited or moved by the holds' own streams.
 */
export function isMaterialized(account: string): boolean {
  return isAgentAccount(account) || account === SystemAccount.faucetTreasury;
}
