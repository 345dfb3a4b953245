import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVICE_NAMES, type ServiceName } from '@pf/contracts';
import { decodeMessage, ExitCode, UsageError, type OpsMessage, type ProgressRenderer } from '@pf/ops-kit';

export type ServiceSelection = ServiceName | 'all';

/** `casino` → [casino]; `all` → every service, in the order money flows (casino first). */
export function selectServices(
  name: string | undefined,
  allowed = SERVICE_NAMES,
): { selection: ServiceSelection; services: ServiceName[] } {
  if (name === undefined) throw new UsageError(`name a service: ${[...allowed, 'all'].join(', ')}`);
  if (name === 'all') return { selection: 'all', services: [...allowed] };
  if (!(allowed as readonly string[]).includes(name))
    throw new UsageError(
      `unknown service ${JSON.stringify(name)}: expected one of ${[...allowed, 'all'].join(', ')}`,
    );
  return { selection: name as ServiceName, services: [name as ServiceName] };
}

/**
 * Where a service's ops entry is in the build: `dist/apps/<service>/src/ops.js`, next to this
 * CLI's own `dist/apps/ops/src/main.js`, so the layout works from any working directory.
 */
export function serviceEntryPath(service: ServiceName): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', '..', service, 'src', 'ops.js');
}

export function hasServiceEntry(service: ServiceName): boolean {
  return existsSync(serviceEntryPath(service));
}

export interface ServiceRunOutcome {
  exitCode: number;
  result?: Extract<OpsMessage, { type: 'result' }>;
  error?: string;
}

/**
 * Runs one service entry as a child process and feeds its protocol lines to `onMessage`;
 * progress goes to the renderer. Stray output (a crash's stack trace) is passed through on
 * stderr so nothing is hidden from the operator.
 */
export async function runServiceEntry(
  service: ServiceName,
  args: readonly string[],
  renderer: ProgressRenderer,
  onMessage: (message: OpsMessage) => Promise<void> | void,
): Promise<ServiceRunOutcome> {
  const child = spawn(process.execPath, [serviceEntryPath(service), ...args], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const outcome: ServiceRunOutcome = { exitCode: ExitCode.usage };
  const exited = new Promise<number>((resolve) =>
    child.once('close', (code) => resolve(code ?? ExitCode.usage)),
  );
  child.stderr.on('data', (chunk: Buffer) => {
    renderer.finish();
    process.stderr.write(chunk.toString().replace(/^(?=.)/gm, `${service}: `));
  });
  let phase = '';
  for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
    const message = decodeMessage(line);
    if (!message) {
      if (line.trim() !== '') process.stderr.write(`${service}: ${line}\n`);
      continue;
    }
    if (message.type === 'progress') {
      if (message.phase !== phase) renderer.start(`${service} ${(phase = message.phase)}`);
      renderer.update(message.done, message.total);
      continue;
    }
    renderer.finish();
    phase = '';
    if (message.type === 'result') outcome.result = message;
    if (message.type === 'error') outcome.error = message.message;
    await onMessage(message);
  }
  outcome.exitCode = await exited;
  renderer.finish();
  return outcome;
}
