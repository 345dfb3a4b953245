import type { BulkLoadContext, CopyIn, ProjectionTarget } from '@pf/event-store';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { DataSource, QueryRunner } from 'typeorm';
import { quoteIdentifier } from './sql.js';

type CopyStream = ReturnType<typeof copyFrom>;

/**
 * The connections behind a projection's bulk load: each COPY gets a connection of its own
 * (several stay open at once), with `synchronous_commit` off — a shadow table lost to a crash
 * only means replaying again, and the swap's own commit is synchronous. `close` releases them,
 * after a failure once the COPYs still open are abandoned.
 */
export class BulkLoadConnections {
  private readonly runners: QueryRunner[] = [];
  /** COPYs neither finished nor failed. */
  private readonly open = new Set<CopyStream>();

  constructor(private readonly dataSource: DataSource) {}

  context(target: ProjectionTarget): BulkLoadContext {
    return {
      target,
      query: <T>(sql: string, parameters?: unknown[]) =>
        this.dataSource.query(sql, parameters) as Promise<T[]>,
      copy: (table, columns) => this.copy(target, table, columns),
    };
  }

  async close(failure?: unknown): Promise<void> {
    // Destroying a COPY that is still open sends CopyFail: Postgres rolls it back and the
    // connection is usable again.
    if (failure !== undefined) for (const stream of this.open) stream.destroy(new Error('replay aborted'));
    this.open.clear();
    for (const runner of this.runners.splice(0)) await runner.release().catch(() => undefined);
  }

  private async copy(target: ProjectionTarget, table: string, columns: readonly string[]): Promise<CopyIn> {
    const runner = this.dataSource.createQueryRunner();
    this.runners.push(runner);
    const client = (await runner.connect()) as pg.PoolClient;
    await client.query('SET synchronous_commit = off');
    const stream = client.query(
      copyFrom(`COPY ${target.table(table)} (${columns.map(quoteIdentifier).join(', ')}) FROM STDIN`),
    );
    this.open.add(stream);
    let failure: Error | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      stream.once('finish', () => {
        this.open.delete(stream);
        resolve();
      });
      stream.on('error', (error: Error) => {
        this.open.delete(stream);
        failure ??= error;
        reject(error);
      });
    });
    // Observed by end() or by the next write(); never an unhandled rejection in between.
    finished.catch(() => undefined);
    return {
      write: async (rows) => {
        if (failure) throw failure;
        if (stream.write(rows)) return;
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            stream.off('error', onError);
            resolve();
          };
          const onError = (error: Error) => {
            stream.off('drain', onDrain);
            reject(error);
          };
          stream.once('drain', onDrain);
          stream.once('error', onError);
        });
      },
      end: async () => {
        if (failure) throw failure;
        stream.end();
        await finished;
      },
    };
  }
}
