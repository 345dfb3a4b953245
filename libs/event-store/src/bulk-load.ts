import type { ProjectionTarget } from './projection.js';
import type { RecordedEvent } from './types.js';

/**
 * A projection's fast path for a full rebuild into empty tables (ops replay): it keeps what
 * the next event depends on in memory (running balances, say) and streams its rows into the
 * tables with COPY, instead of reading back the result of each batch's statements. It must
 * leave the tables exactly as `apply` would have (the ops tooling compares the two: a replay
 * is checked against the live tables, which `apply` wrote).
 */
export interface BulkLoad {
  /** Takes the next events in log order; the first call sees the log's first events. */
  apply(events: readonly RecordedEvent[]): Promise<void>;
  /** Writes what was kept in memory; called once, after the last event. */
  finish(): Promise<void>;
}

export interface BulkLoadContext {
  readonly target: ProjectionTarget;
  /** Runs one statement (outside any COPY). */
  query<T = Record<string, unknown>>(sql: string, parameters?: unknown[]): Promise<T[]>;
  /** Opens a COPY FROM STDIN (text format) into `table` of the target, on its own connection. */
  copy(table: string, columns: readonly string[]): Promise<CopyIn>;
}

/** An open COPY: rows in, in COPY's text format (see copyRow). */
export interface CopyIn {
  /** Queues text made of whole rows; resolves at once, or once the connection has drained. */
  write(rows: string): Promise<void>;
  /** Ends the COPY and waits until Postgres has taken every row. */
  end(): Promise<void>;
}

/** NULL in COPY's text format. */
export const COPY_NULL = '\\N';

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPED = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One field in COPY's text format: backslash, tab, newline and carriage return escaped; null → \N. */
export function copyField(value: string | number | bigint | null | undefined): string {
  if (value === null || value === undefined) return COPY_NULL;
  if (typeof value !== 'string') return String(value);
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPED, (character) => ESCAPES[character]!) : value;
}

/** One row in COPY's text format, newline included. */
export function copyRow(values: ReadonlyArray<string | number | bigint | null | undefined>): string {
  let row = copyField(values[0]);
  for (let index = 1; index < values.length; index += 1) row += '\t' + copyField(values[index]);
  return row + '\n';
}
