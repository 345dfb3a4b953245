import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUS_USERS, renderBusAuthorization, SubjectPrefix, type BusUser } from '@pf/contracts';

/** Where the embedded nats-server's per-service passwords live (mode 600, like the admin key). */
export const BUS_PASSWORDS_FILE = 'nats-users.json';

/**
 * One random password per bus user, made once and kept under the data directory so restarts
 * (and the ops CLI: `NATS_USER=ops NATS_PASSWORD=…`) use the same ones. A user added later (a new
 * service) gets its password on the next start; existing ones never change.
 */
export function resolveBusPasswords(dataDir: string): { passwords: Record<BusUser, string>; file: string } {
  const file = path.join(dataDir, BUS_PASSWORDS_FILE);
  const stored = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<BusUser, string>>)
    : {};
  const passwords = Object.fromEntries(
    BUS_USERS.map((user) => [user, stored[user] ?? randomBytes(24).toString('base64url')]),
  ) as Record<BusUser, string>;
  if (BUS_USERS.some((user) => stored[user] === undefined)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return { passwords, file };
}

/**
 * The embedded server's config: only the users and their permissions (ADR 0010). Listen address,
 * port and store stay on the command line. Rewritten at every start, so it follows the contracts
 * and NATS_PREFIX.
 */
export function writeNatsServerConfig(
  dataDir: string,
  prefix: string,
  passwords: Record<BusUser, string>,
): string {
  const file = path.join(dataDir, 'nats-server.conf');
  const secrets = Object.fromEntries(BUS_USERS.map((user) => [user, { password: passwords[user] }]));
  writeFileSync(file, renderBusAuthorization(new SubjectPrefix(prefix), secrets), { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** The variables that make an app connect as its own user. */
export function busUserEnv(user: BusUser, passwords: Record<BusUser, string>): Record<string, string> {
  return { NATS_USER: user, NATS_PASSWORD: passwords[user] };
}
