/**
 * The launcher's output: its own messages as `[start] …`, and every child's lines prefixed
 * with the child's name. On a terminal the apps' pino JSON lines are shortened to
 * `time level msg key=value`; anywhere else they pass through untouched so tools can parse them.
 */

export type LogFormat = 'pretty' | 'json';

const NAME_WIDTH = 8;
const FIELD_CHARS_MAX = 200;
/** pino fields every line carries; printing them again on each pretty line is noise. */
const QUIET_FIELDS = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname', 'context']);

// A closed stdout (e.g. `npm start | head`) must not crash the launcher while children still run.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

function prefix(name: string): string {
  return `[${name}]`.padEnd(NAME_WIDTH + 2);
}

export function say(message: string): void {
  process.stdout.write(`${prefix('start')} ${message}\n`);
}

export function complain(message: string): void {
  process.stderr.write(`${prefix('start')} ${message}\n`);
}

/** Prints one line of a child's output with its name in front. */
export function echoLine(name: string, line: string, format: LogFormat, stream: 'stdout' | 'stderr'): void {
  const text = format === 'pretty' ? prettyLine(line) : line;
  (stream === 'stderr' ? process.stderr : process.stdout).write(`${prefix(name)} ${text}\n`);
}

/** `{"level":"info","time":"…T09:44:27.419Z","msg":"casino ready","port":3001}` → `09:44:27.419 INFO  casino ready port=3001`. */
export function prettyLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof record.msg !== 'string') return line;
  const time = typeof record.time === 'string' ? record.time.slice(11, 23) : '';
  const level = String(record.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const head = isAccessLine(record) ? accessSummary(record) : record.msg;
  const shown = isAccessLine(record) ? ACCESS_FIELDS : new Set<string>();
  const fields = Object.entries(record)
    .filter(([key, value]) => !QUIET_FIELDS.has(key) && !shown.has(key) && value !== '')
    .map(([key, value]) => `${key}=${formatField(value)}`);
  return [time, level, head, ...fields].filter((part) => part !== '').join(' ');
}

/** The gateway's access line fields, shown as `POST /escrow/create 201 12.3ms` instead of key=value. */
const ACCESS_FIELDS = new Set(['method', 'route', 'status', 'latency_ms']);

function isAccessLine(record: Record<string, unknown>): boolean {
  return record.msg === 'request' && typeof record.method === 'string' && typeof record.status === 'number';
}

function accessSummary(record: Record<string, unknown>): string {
  const route = typeof record.route === 'string' ? record.route : '(no route)';
  return `${String(record.method)} ${route} ${String(record.status)} ${String(record.latency_ms)}ms`;
}

function formatField(value: unknown): string {
  if (
    value !== null &&
    typeof value === 'object' &&
    'message' in value &&
    typeof value.message === 'string'
  ) {
    return JSON.stringify(value.message);
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > FIELD_CHARS_MAX ? `${text.slice(0, FIELD_CHARS_MAX)}…` : text;
}

/** A URL safe to print: the password, if any, replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
