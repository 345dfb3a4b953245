import { getLedgerCommandSchema } from '@pf/contracts';
import { ledgerQuerySchema } from './casino.controller.js';

/** Issue #18 point 3: a cursor beyond Postgres' bigint failed casino's query (a 500). */
describe('ledger cursor bounds', () => {
  const agentId = 'ag_0123456789ab';

  it.each(['9999999999999999999', '9223372036854775808'])(
    'refuses %s in the route and in the casino command',
    (cursor) => {
      expect(ledgerQuerySchema.safeParse({ cursor }).success).toBe(false);
      expect(getLedgerCommandSchema.safeParse({ agentId, cursor }).success).toBe(false);
    },
  );

  it.each(['0', '41', '9223372036854775807'])('accepts %s', (cursor) => {
    expect(ledgerQuerySchema.safeParse({ cursor }).success).toBe(true);
    expect(getLedgerCommandSchema.safeParse({ agentId, cursor }).success).toBe(true);
  });

  it('names the field and says what a cursor is', () => {
    const result = ledgerQuerySchema.safeParse({ cursor: '9999999999999999999' });
    expect(result.error?.issues[0]).toMatchObject({
      path: ['cursor'],
      message: 'must be a cursor returned by a previous page',
    });
  });
});
