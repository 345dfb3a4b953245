import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { workspaceRoot } from '@pf/testing';

/** The built CLI, as operators run it (`npm run build` first). */
export function opsEntry(): string {
  const entry = path.join(workspaceRoot(), 'dist', 'apps', 'ops', 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  return entry;
}

export interface OpsRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ops <args>` to completion (bounded), with only the given environment. */
export function runOps(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<OpsRun> {
  const child = spawn(process.execPath, [opsEntry(), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ops ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `ops` command (tail): its output lines as they come, and a way to wait for one. */
export class OpsProcess {
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: readonly string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [opsEntry(), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const split = (target: string[]) => {
      let partial = '';
      return (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        target.push(...lines.filter(Boolean));
      };
    };
    this.child.stdout!.on('data', split(this.stdoutLines));
    this.child.stderr!.on('data', split(this.stderrLines));
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  async waitForLine(
    stream: 'stdout' | 'stderr',
    predicate: (line: string) => boolean,
    timeoutMs = 10_000,
  ): Promise<string> {
    const lines = stream === 'stdout' ? this.stdoutLines : this.stderrLines;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = lines.find(predicate);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(
      `no matching ${stream} line within ${timeoutMs} ms; stdout:\n${this.stdoutLines.join('\n')}\nstderr:\n${this.stderrLines.join('\n')}`,
    );
  }

  stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}
