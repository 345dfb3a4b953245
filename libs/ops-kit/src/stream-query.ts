import type { DataSource } from 'typeorm';

/** Rows per FETCH: memory stays bounded whatever the size of the result. */
export const STREAM_FETCH_ROWS = 5_000;

/**
 * Streams a query's rows through a server-side cursor, `STREAM_FETCH_ROWS` at a time, in one
 * read-only REPEATABLE READ snapshot (every batch sees the same instant). For facts and checks
 * over whole logs: no keyset to invent per query, no unbounded result in memory.
 */
export async function streamQuery<Row>(
  dataSource: DataSource,
  sql: string,
  parameters: readonly unknown[],
  each: (row: Row) => Promise<void> | void,
): Promise<number> {
  const runner = dataSource.createQueryRunner();
  let rows = 0;
  try {
    await runner.startTransaction('REPEATABLE READ');
    try {
      await runner.query('SET TRANSACTION READ ONLY');
      await runner.query(`DECLARE ops_stream NO SCROLL CURSOR FOR ${sql}`, [...parameters]);
      for (;;) {
        const batch: Row[] = await runner.query(`FETCH ${STREAM_FETCH_ROWS} FROM ops_stream`);
        for (const row of batch) await each(row);
        rows += batch.length;
        if (batch.length < STREAM_FETCH_ROWS) break;
      }
    } finally {
      await runner.rollbackTransaction();
    }
  } finally {
    await runner.release();
  }
  return rows;
}
