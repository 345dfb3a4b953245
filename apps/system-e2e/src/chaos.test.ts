import { spawn } from 'node:child_process';
import path from 'node:path';
import { workspaceRoot } from '@pf/testing';

interface ChaosReport {
  lifecycles: number;
  faults: { appKills: number; natsRestarts: number; postgresCrashes: number };
  lostMicros: string;
  duplicatedMicros: string;
  opsVerify: string;
  violations: string[];
}

/** Runs the built chaos tool (`npm run chaos`) and returns its JSON report and exit code. */
function runChaos(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; report?: ChaosReport; stderr: string }> {
  const entry = path.join(workspaceRoot(), 'dist', 'tools', 'chaos', 'main.js');
  const child = spawn(process.execPath, [entry, ...args, '--json'], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').at(-1);
      resolve({
        code,
        report: line ? (JSON.parse(line) as ChaosReport) : undefined,
        stderr: stderr.slice(-4_000),
      });
    });
  });
}

/**
 * The short chaos run (issue #18): ≥ 30 s of lifecycles through the gateway while apps are
 * SIGKILLed every few seconds, NATS restarts and Postgres crashes — on the run's own Postgres
 * and NATS — and then not one micro-dollar lost or duplicated, ops verify clean.
 */
describe('chaos (short run)', () => {
  it('keeps every micro-dollar under app kills, a NATS restart and a Postgres crash', async () => {
    const { code, report, stderr } = await runChaos(
      ['--duration', '30s', '--agents', '4', '--kill-every', '3s'],
      330_000,
    );
    expect({ violations: report?.violations, stderr: code === 0 ? '' : stderr }).toEqual({
      violations: [],
      stderr: '',
    });
    expect(code).toBe(0);
    expect(report!.faults.appKills).toBeGreaterThanOrEqual(5);
    expect(report!.faults.natsRestarts).toBeGreaterThanOrEqual(1);
    expect(report!.faults.postgresCrashes).toBeGreaterThanOrEqual(1);
    // Few on a loaded 2-core machine (an app restart takes seconds), but some must complete.
    expect(report!.lifecycles).toBeGreaterThanOrEqual(5);
    expect({
      lost: report!.lostMicros,
      duplicated: report!.duplicatedMicros,
      verify: report!.opsVerify,
    }).toEqual({ lost: '0', duplicated: '0', verify: 'ok' });
  }, 360_000);
});
