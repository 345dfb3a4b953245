import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument, type Tags } from 'yaml';
import { baseConfigSchema, loadConfig } from '@pf/platform';
import { APP_NAMES, workspaceRoot } from '@pf/testing';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition?: string }>;
  volumes?: string[];
  healthcheck?: { test?: string[] };
}

/** Compose's `!override` (replace a list instead of appending to it) is a plain sequence to us. */
const composeTags: Tags = [{ tag: '!override', collection: 'seq', resolve: (value) => value }];

function readCluster(): { services: Record<string, Service>; volumes: Record<string, unknown> } {
  const text = readFileSync(path.join(workspaceRoot(), 'docker-compose.cluster.yml'), 'utf8');
  const document = parseDocument(text, { merge: true, customTags: composeTags });
  expect(document.errors).toEqual([]);
  return document.toJS() as { services: Record<string, Service>; volumes: Record<string, unknown> };
}

function flag(argv: readonly string[], name: string): string | undefined {
  const index = argv.indexOf(name);
  return index >= 0 ? argv[index + 1] : undefined;
}

/**
 * Docker does not run on the development machines, so the cluster profile is checked
 * statically (like docker-compose.yml): three JetStream nodes routed to each other, each with
 * its own name and store volume, and every app twice, on all three nodes, with R3 streams.
 */
describe('docker-compose.cluster.yml', () => {
  const { services, volumes } = readCluster();
  const nodes = ['nats', 'nats-2', 'nats-3'];

  it('runs three JetStream nodes, each named, stored on a volume and routed to the other two', () => {
    for (const node of nodes) {
      const argv = services[node]!.command!;
      expect(argv).toContain('-js');
      expect(flag(argv, '--cluster_name')).toBe('agent-marketplace');
      expect(flag(argv, '--cluster')).toBe('nats://0.0.0.0:6222');
      const routes = flag(argv, '--routes')!.split(',');
      expect(routes.sort()).toEqual(
        nodes
          .filter((other) => other !== node)
          .map((other) => `nats://${other}:6222`)
          .sort(),
      );
    }
    expect(new Set(nodes.map((node) => flag(services[node]!.command!, '--name'))).size).toBe(3);
    for (const node of ['nats-2', 'nats-3']) {
      const mount = services[node]!.volumes![0]!.split(':');
      expect(mount[1]).toBe(flag(services[node]!.command!, '-sd'));
      expect(volumes).toHaveProperty(mount[0]!);
      expect(services[node]!.healthcheck!.test!.join(' ')).toContain(':8222/healthz');
    }
  });

  it.each(APP_NAMES)('runs two %s replicas on all three nodes with three copies of each stream', (app) => {
    const service = services[app]!;
    expect(service.deploy?.replicas).toBe(2);
    expect(service.environment!.NATS_URL!.split(',')).toEqual(nodes.map((node) => `nats://${node}:4222`));
    const config = loadConfig(baseConfigSchema, service.environment!);
    expect(config.NATS_STREAM_REPLICAS).toBe(3);
    expect(service.depends_on).toEqual({
      'nats-2': { condition: 'service_healthy' },
      'nats-3': { condition: 'service_healthy' },
    });
  });
});
