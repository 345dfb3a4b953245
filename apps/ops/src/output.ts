import { formatCount, ProgressRenderer } from '@pf/ops-kit';

/** Results go to stdout (pipe them), progress and notes to stderr (watch them). */
export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function progressRenderer(): ProgressRenderer {
  return new ProgressRenderer({ output: process.stderr });
}

export function formatMegabytes(bytes: number): string {
  return `${formatCount(bytes / 1_048_576)} MB`;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** `key=value` pairs, quoted only when needed, for one-line output. */
export function formatIds(ids: Record<string, string>): string {
  return Object.entries(ids)
    .map(([key, value]) => `${key}=${/^[\w.:@-]+$/.test(value) ? value : JSON.stringify(value)}`)
    .join(' ');
}
