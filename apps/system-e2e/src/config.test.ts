import { spawnService, type AppName } from '@pf/testing';

/** A bad or missing value stops the app at start with a message naming the variable. */
describe('configuration validation at start', () => {
  it.each<[AppName, Record<string, string>, RegExp]>([
    ['gateway', { PORT: 'abc' }, /gateway: invalid configuration: PORT must be a port number \(got "abc"\)/],
    [
      'casino',
      { DATABASE_URL: 'mysql://localhost/db' },
      /casino: invalid configuration: DATABASE_URL must be a URL starting with postgres:\/\//,
    ],
    [
      'faucet',
      { NATS_URL: 'http://127.0.0.1:4222' },
      /faucet: invalid configuration: NATS_URL must be a comma-separated list of URLs/,
    ],
    ['escrow', { LOG_LEVEL: 'chatty' }, /escrow: invalid configuration: LOG_LEVEL must be one of/],
    [
      'gateway',
      { COMMAND_TIMEOUT_MS: '5' },
      /gateway: invalid configuration: COMMAND_TIMEOUT_MS must be at least 100/,
    ],
    [
      'gateway',
      { COMMAND_TIMEOUT_MS: '5000', IDEMPOTENCY_LEASE_MS: '10000' },
      /gateway: invalid configuration: IDEMPOTENCY_LEASE_MS must be at least 11000/,
    ],
    [
      'casino',
      { LEDGER_BATCHES_IN_FLIGHT: '0' },
      /casino: invalid configuration: LEDGER_BATCHES_IN_FLIGHT must be at least 1/,
    ],
  ])('%s refuses %j', async (app, env, message) => {
    const service = await spawnService(app, { env: { ...env } });
    const exit = await service.exited;
    expect(exit.code).toBe(1);
    expect(service.output.join('\n')).toMatch(message);
  });
});
