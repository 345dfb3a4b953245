import type pg from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';

/** One SQL statement with its parameters; `name` makes it a per-connection prepared statement. */
export interface Statement {
  name?: string;
  text: string;
  values?: unknown[];
}

/**
 * Sends statements on one connection in a single write and waits for all of their answers.
 * On a pg connection in pipeline mode (libs/platform turns it on) they travel together: one
 * round trip and one `writev` for all of them instead of one each — on these virtual machines
 * the syscalls and the waits, not the statements, were most of a small transaction's cost.
 * Without pipeline mode they still run, one after the other. Rejects with the first failure,
 * once every statement has answered (so the connection's state is known).
 */
export async function sendPipelined(
  client: pg.ClientBase,
  statements: readonly Statement[],
): Promise<pg.QueryResult[]> {
  const stream = (
    client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }
  ).connection?.stream;
  stream?.cork?.();
  let pending: Array<Promise<pg.QueryResult>>;
  try {
    pending = statements.map((statement) => client.query(statement));
  } finally {
    stream?.uncork?.();
  }
  const settled = await Promise.allSettled(pending);
  const failure = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure) throw failure.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<pg.QueryResult>).value);
}

/**
 * A transaction driven by pipelined round trips: BEGIN travels with the first statements and
 * COMMIT with the last ones. Any failure rolls back and releases the connection; so does
 * `rollback`. After `commit` or `rollback` the object is spent.
 */
export class PipelinedTransaction {
  private open = true;

  private constructor(
    private readonly runner: QueryRunner,
    private readonly client: pg.ClientBase,
  ) {}

  /** Starts a transaction (the connection's default level) and runs `statements` in it; their results. */
  static async begin(
    dataSource: DataSource,
    statements: readonly Statement[],
  ): Promise<[PipelinedTransaction, pg.QueryResult[]]> {
    const runner = dataSource.createQueryRunner();
    let client: pg.ClientBase;
    try {
      client = (await runner.connect()) as pg.ClientBase;
    } catch (error) {
      await runner.release();
      throw error;
    }
    const transaction = new PipelinedTransaction(runner, client);
    const results = await transaction.guard(() => sendPipelined(client, [{ text: 'BEGIN' }, ...statements]));
    return [transaction, results.slice(1)];
  }

  /**
   * A whole transaction in one round trip: BEGIN, `statements`, COMMIT. Their results; rejects
   * with the first failure (everything rolled back) or if the COMMIT turned into a rollback.
   */
  static async run(dataSource: DataSource, statements: readonly Statement[]): Promise<pg.QueryResult[]> {
    const runner = dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as pg.ClientBase;
      let results: pg.QueryResult[];
      try {
        results = await sendPipelined(client, [{ text: 'BEGIN' }, ...statements, { text: 'COMMIT' }]);
      } catch (error) {
        // A failed statement makes Postgres answer the COMMIT with ROLLBACK; this only covers a
        // connection that broke midway (the pool replaces broken connections).
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      if (results.at(-1)?.command !== 'COMMIT')
        throw new Error(`transaction did not commit (${results.at(-1)?.command ?? 'no answer'})`);
      return results.slice(1, -1);
    } finally {
      await runner.release();
    }
  }

  async send(statements: readonly Statement[]): Promise<pg.QueryResult[]> {
    this.assertOpen();
    return this.guard(() => sendPipelined(this.client, statements));
  }

  /** Runs `statements` and COMMIT in one round trip; their results. Throws if the commit turned into a rollback. */
  async commit(statements: readonly Statement[] = []): Promise<pg.QueryResult[]> {
    this.assertOpen();
    const results = await this.guard(() => sendPipelined(this.client, [...statements, { text: 'COMMIT' }]));
    this.open = false;
    await this.runner.release();
    // A transaction that failed earlier answers COMMIT with ROLLBACK: never report that as a commit.
    if (results.at(-1)?.command !== 'COMMIT')
      throw new Error(`transaction did not commit (${results.at(-1)?.command ?? 'no answer'})`);
    return results.slice(0, -1);
  }

  async rollback(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    try {
      await this.client.query('ROLLBACK');
    } catch {
      // The connection may be broken; the pool replaces broken connections.
    } finally {
      await this.runner.release();
    }
  }

  private async guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      await this.rollback();
      throw error;
    }
  }

  private assertOpen(): void {
    if (!this.open) throw new Error('the transaction has already ended');
  }
}
