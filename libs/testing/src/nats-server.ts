import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectTestNats } from './nats.js';
import { freePort } from './processes.js';
import { waitFor } from './wait.js';

/** Where Debian's package and manual installs put nats-server when it is not on PATH. */
const NATS_SERVER_CANDIDATES = [
  '/usr/sbin/nats-server',
  '/usr/local/bin/nats-server',
  '/usr/bin/nats-server',
];
const READY_TIMEOUT_MS = 30_000;

export function natsServerBinary(): string {
  const fromPath = (process.env.PATH ?? '')
    .split(path.delimiter)
    .map((dir) => path.join(dir, 'nats-server'))
    .find((candidate) => existsSync(candidate));
  const found = fromPath ?? NATS_SERVER_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!found)
    throw new Error('nats-server is not installed (looked on PATH and in /usr/sbin, /usr/local/bin)');
  return found;
}

interface NodeSpec {
  name: string;
  clientPort: number;
  clusterPort: number;
  configPath: string;
}

/**
 * A throwaway `nats-server -js` (one node) or 3-node JetStream cluster with routes between the
 * nodes, on free ports with its store in a temporary directory: tests and the chaos suite kill
 * and restart it freely, never touching the machine's broker. Each node can be killed
 * (SIGKILL) and restarted with the same ports and store.
 */
export class NatsServers {
  private readonly children = new Map<number, ChildProcess>();

  private constructor(
    private readonly directory: string,
    private readonly nodes: NodeSpec[],
  ) {}

  static async start(nodeCount = 1): Promise<NatsServers> {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'pf-nats-'));
    const nodes: NodeSpec[] = [];
    for (let index = 0; index < nodeCount; index += 1) {
      nodes.push({
        name: `n${index + 1}`,
        clientPort: await freePort(),
        clusterPort: await freePort(),
        configPath: path.join(directory, `n${index + 1}.conf`),
      });
    }
    for (const node of nodes) await writeFile(node.configPath, nodeConfig(node, nodes, directory));
    const servers = new NatsServers(directory, nodes);
    try {
      for (let index = 0; index < nodeCount; index += 1) await servers.spawnNode(index);
      await servers.waitForJetStream();
    } catch (error) {
      await servers.stop();
      throw error;
    }
    return servers;
  }

  /** Every node's client URL, comma-separated (clients fail over between them). */
  get url(): string {
    return this.nodes.map((node) => `nats://127.0.0.1:${node.clientPort}`).join(',');
  }

  get size(): number {
    return this.nodes.length;
  }

  nodeUrl(index: number): string {
    return `nats://127.0.0.1:${this.nodes[index]!.clientPort}`;
  }

  nodeName(index: number): string {
    return this.nodes[index]!.name;
  }

  pids(): number[] {
    return [...this.children.values()].map((child) => child.pid!).filter(Boolean);
  }

  private async spawnNode(index: number): Promise<void> {
    const node = this.nodes[index]!;
    await mkdir(path.join(this.directory, node.name), { recursive: true });
    const child = spawn(natsServerBinary(), ['-c', node.configPath], { stdio: 'ignore' });
    this.children.set(index, child);
    await waitFor(
      `nats-server ${node.name}`,
      async () =>
        child.exitCode === null
          ? await answers(node.clientPort)
          : Promise.reject(new Error(`nats-server ${node.name} exited`)),
      {
        timeoutMs: READY_TIMEOUT_MS,
        intervalMs: 100,
      },
    );
  }

  /** Crashes one node (SIGKILL): no flush, no goodbye to the cluster. */
  async kill(index: number): Promise<void> {
    const child = this.children.get(index);
    this.children.delete(index);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed node again with its ports and store. */
  restart(index: number): Promise<void> {
    return this.spawnNode(index);
  }

  /** Resolves once JetStream answers on every running node (a cluster has elected its meta leader). */
  async waitForJetStream(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    for (const index of this.children.keys()) {
      await waitFor(
        `JetStream on ${this.nodes[index]!.name}`,
        async () => {
          const connection = await connectTestNats(this.nodeUrl(index)).catch(() => undefined);
          if (!connection) return undefined;
          try {
            const { jetstreamManager } = await import('@nats-io/jetstream');
            const manager = await jetstreamManager(connection, { timeout: 2_000 });
            await manager.getAccountInfo();
            return true;
          } catch {
            return undefined;
          } finally {
            await connection.close().catch(() => undefined);
          }
        },
        { timeoutMs, intervalMs: 250 },
      );
    }
  }

  /** Kills every node and deletes the store. */
  async stop(): Promise<void> {
    for (const index of [...this.children.keys()]) await this.kill(index);
    await rm(this.directory, { recursive: true, force: true });
  }
}

function nodeConfig(node: NodeSpec, nodes: NodeSpec[], directory: string): string {
  const lines = [
    `server_name: ${node.name}`,
    `listen: 127.0.0.1:${node.clientPort}`,
    `jetstream { store_dir: ${JSON.stringify(path.join(directory, node.name))} }`,
  ];
  if (nodes.length > 1) {
    const routes = nodes
      .filter((other) => other !== node)
      .map((other) => `nats-route://127.0.0.1:${other.clusterPort}`);
    lines.push(
      `cluster { name: pf-test, listen: 127.0.0.1:${node.clusterPort}, routes: [${routes.join(', ')}] }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function answers(port: number): Promise<true | undefined> {
  const connection = await connectTestNats(`nats://127.0.0.1:${port}`, {
    timeout: 1_000,
    reconnect: false,
  }).catch(() => undefined);
  if (!connection) return undefined;
  await connection.close().catch(() => undefined);
  return true;
}
