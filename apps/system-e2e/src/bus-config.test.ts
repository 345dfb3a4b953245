import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import {
  BUS_USERS,
  busInboxPrefix,
  busPermissions,
  casinoCommands,
  renderBusAuthorization,
  SubjectPrefix,
  type BusUser,
} from '@pf/contracts';
import { findNatsServer, workspaceRoot } from '@pf/testing';

const root = workspaceRoot();
const passwordVariable = (user: BusUser) => `NATS_${user.toUpperCase()}_PASSWORD`;

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
}

/** The shipped bus users (ADR 0010): one source of truth, and the shipped files follow it. */
describe('bus users and permissions, as shipped', () => {
  it.each(['', 't0123456789'])(
    'only the gateway and ops may send casino.cmd.credit (prefix %j)',
    (prefixValue) => {
      const prefix = new SubjectPrefix(prefixValue);
      const permissions = busPermissions(prefix);
      const senders = BUS_USERS.filter((user) =>
        permissions[user].publish.some((subject) => covers(subject, prefix.subject(casinoCommands.credit))),
      );
      expect(senders).toEqual(['gateway', 'ops']);
    },
  );

  it.each(['', 't0123456789'])(
    'each user subscribes to its own inbox and its own commands only (prefix %j)',
    (prefixValue) => {
      const prefix = new SubjectPrefix(prefixValue);
      const permissions = busPermissions(prefix);
      for (const user of BUS_USERS) {
        const allowed = new Set([`${busInboxPrefix(user, prefix)}.>`, prefix.subject(`${user}.cmd.>`)]);
        expect(permissions[user].subscribe.filter((subject) => !allowed.has(subject))).toEqual([]);
        expect(permissions[user].publish).not.toContain('>');
      }
    },
  );

  it('no service may both change a stream and read it (which would let it capture another inbox)', () => {
    const permissions = busPermissions(new SubjectPrefix(''));
    for (const user of BUS_USERS.filter((name) => name !== 'ops')) {
      const updates = permissions[user].publish
        .filter((subject) => subject.startsWith('$JS.API.STREAM.UPDATE.'))
        .map((subject) => subject.split('.')[4]);
      const reads = permissions[user].publish
        .filter((subject) => subject.startsWith('$JS.API.CONSUMER.CREATE.'))
        .map((subject) => subject.split('.')[4]);
      expect({ user, both: updates.filter((stream) => reads.includes(stream)) }).toEqual({ user, both: [] });
    }
  });

  it('docker/nats-server.conf is the rendered authorization, and nats-server accepts it', () => {
    const file = path.join(root, 'docker', 'nats-server.conf');
    const text = readFileSync(file, 'utf8');
    const secrets = Object.fromEntries(
      BUS_USERS.map((user) => [user, { passwordFromEnv: passwordVariable(user) }]),
    );
    const rendered = renderBusAuthorization(new SubjectPrefix(''), secrets);
    // On a mismatch, the expected block is printed: paste it below the file's comment header.
    expect(text.endsWith(rendered) ? rendered : text).toBe(rendered);
    const env = {
      PATH: process.env.PATH ?? '',
      ...Object.fromEntries(BUS_USERS.map((user) => [passwordVariable(user), `pw-${user}`])),
    };
    expect(
      execFileSync(findNatsServer(), ['-c', file, '-t'], { env, encoding: 'utf8', stdio: 'pipe' }),
    ).toBeDefined();
  });

  it('docker-compose runs NATS with that file and gives each app its own user and password', () => {
    const compose = parseDocument(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), {
      merge: true,
    }).toJS() as {
      services: Record<string, ComposeService>;
    };
    const nats = compose.services.nats!;
    expect(nats.command?.slice(0, 2)).toEqual(['-c', '/etc/nats/nats-server.conf']);
    expect(nats.volumes).toContain('./docker/nats-server.conf:/etc/nats/nats-server.conf:ro');
    for (const user of BUS_USERS)
      expect(nats.environment?.[passwordVariable(user)]).toMatch(
        new RegExp(`^\\$\\{${passwordVariable(user)}:-`),
      );
    const apps = Object.keys(compose.services).filter((name) => name !== 'nats' && name !== 'postgres');
    expect(apps.length).toBeGreaterThanOrEqual(4);
    for (const app of apps) {
      const environment = compose.services[app]!.environment ?? {};
      expect({ app, user: environment.NATS_USER }).toEqual({ app, user: app });
      expect({ app, password: environment.NATS_PASSWORD }).toEqual({
        app,
        password: nats.environment?.[passwordVariable(app as BusUser)],
      });
    }
  });
});

/** Does the permission subject `pattern` allow publishing `subject` (NATS wildcards)? */
function covers(pattern: string, subject: string): boolean {
  const wanted = pattern.split('.');
  const tokens = subject.split('.');
  for (let index = 0; index < wanted.length; index += 1) {
    if (wanted[index] === '>') return tokens.length > index;
    if (wanted[index] !== '*' && wanted[index] !== tokens[index]) return false;
  }
  return wanted.length === tokens.length;
}
