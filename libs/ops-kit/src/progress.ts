/**
 * Progress of a long operation (events done out of a total): the rate over a sliding window
 * and the ETA, rendered as a bar on a terminal or as plain lines in logs and pipes.
 */

export interface ProgressSnapshot {
  label: string;
  done: number;
  total: number;
  eventsPerSecond: number;
  /** Undefined while the rate is still unknown. */
  etaMs: number | undefined;
  elapsedMs: number;
}

/** Rate from the samples of the last `windowMs` (so a slow start does not skew the ETA forever). */
export class RateMeter {
  private readonly samples: Array<{ atMs: number; done: number }> = [];
  private static readonly MAX_SAMPLES = 1_000;

  constructor(
    private readonly startedAtMs: number,
    private readonly windowMs = 5_000,
  ) {
    this.samples.push({ atMs: startedAtMs, done: 0 });
  }

  sample(done: number, atMs: number): void {
    this.samples.push({ atMs, done });
    while (
      this.samples.length > 2 &&
      (atMs - this.samples[0]!.atMs > this.windowMs || this.samples.length > RateMeter.MAX_SAMPLES)
    ) {
      this.samples.shift();
    }
  }

  snapshot(label: string, done: number, total: number, atMs: number): ProgressSnapshot {
    const first = this.samples[0]!;
    const spanMs = atMs - first.atMs;
    const eventsPerSecond = spanMs > 0 ? ((done - first.done) * 1000) / spanMs : 0;
    const remaining = Math.max(total - done, 0);
    const etaMs =
      eventsPerSecond > 0 ? (remaining / eventsPerSecond) * 1000 : remaining === 0 ? 0 : undefined;
    return { label, done, total, eventsPerSecond, etaMs, elapsedMs: atMs - this.startedAtMs };
  }
}

const BAR_WIDTH = 28;

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function formatDurationMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '?';
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** `casino replay [##########..........] 512,000/1,000,000 events  98,000 ev/s  ETA 5s` */
export function formatProgressBar(snapshot: ProgressSnapshot): string {
  const ratio = snapshot.total > 0 ? Math.min(snapshot.done / snapshot.total, 1) : 1;
  const filled = Math.round(ratio * BAR_WIDTH);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
  return `${snapshot.label} [${bar}] ${formatCount(snapshot.done)}/${formatCount(snapshot.total)} events  ${formatCount(snapshot.eventsPerSecond)} ev/s  ETA ${formatDurationMs(snapshot.etaMs)}`;
}

/** `casino replay: 512000/1000000 events (51%), 98000 events/s, ETA 5s` */
export function formatProgressLine(snapshot: ProgressSnapshot): string {
  const percent =
    snapshot.total > 0 ? Math.floor((Math.min(snapshot.done, snapshot.total) * 100) / snapshot.total) : 100;
  return `${snapshot.label}: ${snapshot.done}/${snapshot.total} events (${percent}%), ${Math.round(snapshot.eventsPerSecond)} events/s, ETA ${formatDurationMs(snapshot.etaMs)}`;
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressRendererOptions {
  output: ProgressOutput;
  /** Redraw the bar at most this often; default 100 ms. */
  barIntervalMs?: number;
  /** Plain lines at most this often; default 2,000 ms. */
  lineIntervalMs?: number;
  now?: () => number;
}

/**
 * Draws progress for a human: one bar redrawn in place (`\r`) on a terminal, or a plain line
 * every couple of seconds when the output is a file or a pipe (CI logs stay readable).
 */
export class ProgressRenderer {
  private meter: RateMeter | undefined;
  private label = '';
  private lastDrawMs = -Infinity;
  private lastDrawn = '';
  private barVisible = false;
  private readonly now: () => number;

  constructor(private readonly options: ProgressRendererOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  private get isTerminal(): boolean {
    return this.options.output.isTTY === true;
  }

  start(label: string): void {
    this.finish();
    this.label = label;
    this.meter = new RateMeter(this.now());
    this.lastDrawMs = -Infinity;
    this.lastDrawn = '';
  }

  update(done: number, total: number): void {
    if (!this.meter) this.start(this.label || 'progress');
    const atMs = this.now();
    this.meter!.sample(done, atMs);
    const intervalMs = this.isTerminal
      ? (this.options.barIntervalMs ?? 100)
      : (this.options.lineIntervalMs ?? 2_000);
    if (atMs - this.lastDrawMs < intervalMs && done < total) return;
    // The same counts again (a phase that reports its start and end with nothing between) is noise.
    if (this.lastDrawn === `${done}/${total}`) return;
    this.lastDrawMs = atMs;
    this.lastDrawn = `${done}/${total}`;
    this.draw(this.meter!.snapshot(this.label, done, total, atMs));
  }

  /** Ends the bar's line so the next output starts on a fresh one. */
  finish(): void {
    if (this.barVisible) this.options.output.write('\n');
    this.barVisible = false;
    this.meter = undefined;
  }

  private draw(snapshot: ProgressSnapshot): void {
    if (!this.isTerminal) {
      this.options.output.write(`${formatProgressLine(snapshot)}\n`);
      return;
    }
    const columns = Math.max(this.options.output.columns ?? 100, 20);
    this.options.output.write(`\r${formatProgressBar(snapshot).slice(0, columns - 1)}\x1b[K`);
    this.barVisible = true;
  }
}
