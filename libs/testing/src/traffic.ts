import type { DataSource, QueryRunner } from 'typeorm';

/**
 * Counts what a data source's transactions send to Postgres: every statement issued on a
 * query runner's connection (TypeORM's BEGIN and COMMIT, and statements written to the pg client
 * directly by pipelined transactions), and the round trips — statements issued in one tick on
 * a pipelined connection travel in one write, so they count as one. Each statement is kept as
 * its first `words` words. For tests that pin how many round trips a command costs.
 */
export function countTraffic(
  dataSource: DataSource,
  words = 2,
): <T>(run: () => Promise<T>) => Promise<{ result: T; statements: string[]; roundTrips: number }> {
  const traffic = { statements: [] as string[], roundTrips: 0 };
  const patched = new WeakSet<object>();
  let tickOpen = false;
  const createRunner = dataSource.createQueryRunner.bind(dataSource);
  dataSource.createQueryRunner = (...args: Parameters<DataSource['createQueryRunner']>): QueryRunner => {
    const runner = createRunner(...args);
    const connect = runner.connect.bind(runner);
    runner.connect = async () => {
      const client = (await connect()) as { query: (...args: unknown[]) => unknown };
      if (!patched.has(client)) {
        patched.add(client);
        const query = client.query.bind(client);
        client.query = (...queryArgs: unknown[]) => {
          const first = queryArgs[0] as string | { text: string };
          const text = typeof first === 'string' ? first : first.text;
          traffic.statements.push(text.trim().split(/\s+/).slice(0, words).join(' '));
          if (!tickOpen) {
            tickOpen = true;
            traffic.roundTrips += 1;
            queueMicrotask(() => (tickOpen = false));
          }
          return query(...queryArgs);
        };
      }
      return client;
    };
    return runner;
  };
  return async (run) => {
    traffic.statements = [];
    traffic.roundTrips = 0;
    const result = await run();
    return { result, statements: traffic.statements, roundTrips: traffic.roundTrips };
  };
}
