import { describeDependencyFailure, isDependencyFailure, ThrottledFailureLog } from './dependency-failure.js';

/** An error shaped as node-postgres / TypeORM / Node / the NATS client throw them. */
function failure(fields: Record<string, unknown>): Error {
  return Object.assign(new Error(typeof fields.message === 'string' ? fields.message : 'failed'), fields);
}

describe('isDependencyFailure', () => {
  it.each([
    [
      'a refused connection',
      failure({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' }),
    ],
    ['a reset connection', failure({ code: 'ECONNRESET' })],
    [
      'Postgres shutting down (57P01)',
      failure({ code: '57P01', message: 'terminating connection due to administrator command' }),
    ],
    ['a connection exception (08006)', failure({ code: '08006' })],
    ['too many connections (53300)', failure({ code: '53300' })],
    ['a statement timeout (57014)', failure({ code: '57014' })],
    ['a lost connection', new Error('Connection terminated unexpectedly')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    [
      'TypeORM wrapping a pg error',
      failure({ name: 'QueryFailedError', driverError: failure({ code: '57P01' }) }),
    ],
    ['an error with a cause', new Error('load failed', { cause: failure({ code: 'ECONNREFUSED' }) })],
    ['a closed NATS connection', failure({ name: 'ClosedConnectionError' })],
  ])('classifies %s as a dependency failure', (_name, error) => {
    expect(isDependencyFailure(error)).toBe(true);
  });

  it.each([
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a unique violation (23505)', failure({ code: '23505' })],
    ['a syntax error in SQL (42601)', failure({ code: '42601' })],
    ['a string', 'boom'],
    ['null', null],
  ])('classifies %s as a bug, not a dependency failure', (_name, error) => {
    expect(isDependencyFailure(error)).toBe(false);
  });

  it('describes a failure in one line with its code and no stack', () => {
    expect(describeDependencyFailure(failure({ code: '57P01', message: 'terminating connection' }))).toBe(
      '57P01: terminating connection',
    );
  });
});

describe('ThrottledFailureLog', () => {
  it('logs the first failure of a kind, then one line per interval with the count suppressed', () => {
    const lines: Array<Record<string, unknown>> = [];
    let nowMs = 0;
    const log = new ThrottledFailureLog({ warn: (fields) => lines.push(fields) }, 1_000, () => nowMs);
    for (nowMs = 0; nowMs < 2_500; nowMs += 10) log.warn('postgres', 'down');
    log.warn('nats', 'down');
    expect(lines).toEqual([
      { kind: 'postgres' },
      { kind: 'postgres', suppressedSinceLast: 99 },
      { kind: 'postgres', suppressedSinceLast: 99 },
      { kind: 'nats' },
    ]);
  });
});
