import {
  formatDurationMs,
  formatProgressBar,
  formatProgressLine,
  ProgressRenderer,
  RateMeter,
} from './progress.js';

describe('progress', () => {
  it('measures the rate over a window and derives the ETA', () => {
    const meter = new RateMeter(0, 5_000);
    meter.sample(1_000, 1_000);
    meter.sample(2_000, 2_000);
    const snapshot = meter.snapshot('casino replay', 2_000, 10_000, 2_000);
    expect(snapshot.eventsPerSecond).toBe(1_000);
    expect(snapshot.etaMs).toBe(8_000);
    expect(formatProgressLine(snapshot)).toBe(
      'casino replay: 2000/10000 events (20%), 1000 events/s, ETA 8s',
    );
    expect(formatProgressBar(snapshot)).toBe(
      'casino replay [######......................] 2,000/10,000 events  1,000 ev/s  ETA 8s',
    );
    expect(formatDurationMs(3_725_000)).toBe('1h02m');
    expect(formatDurationMs(undefined)).toBe('?');
  });

  it('draws a bar in place on a terminal and plain lines elsewhere, throttled', () => {
    let nowMs = 0;
    const written: string[] = [];
    const terminal = new ProgressRenderer({
      output: { write: (text: string) => written.push(text), isTTY: true, columns: 200 },
      now: () => nowMs,
    });
    terminal.start('casino replay');
    terminal.update(10, 100);
    nowMs = 50;
    terminal.update(20, 100);
    nowMs = 200;
    terminal.update(100, 100);
    terminal.finish();
    expect(written.filter((text) => text.startsWith('\r'))).toHaveLength(2);
    expect(written.at(-1)).toBe('\n');

    const lines: string[] = [];
    const plain = new ProgressRenderer({
      output: { write: (text: string) => lines.push(text) },
      now: () => nowMs,
    });
    plain.start('faucet replay');
    for (let done = 1; done <= 100; done += 1) {
      nowMs += 100;
      plain.update(done, 100);
    }
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(lines.length).toBeLessThanOrEqual(7);
    expect(lines.every((line) => line.endsWith('\n') && !line.includes('\r'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^faucet replay: 100\/100 events \(100%\)/);
  });
});
