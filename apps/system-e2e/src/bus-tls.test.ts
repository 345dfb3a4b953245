import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nkeys, type NatsConnection } from '@nats-io/transport-node';
import type { BusUser } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  SecuredNats,
  spawnService,
  testNatsPrefix,
  type ServiceProcess,
  type TestDatabase,
} from '@pf/testing';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all made for this run. */
function makeCertificates(dir: string) {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ca = (name: string) => {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.pem`),
    );
    return { cert: file(`${name}.pem`), key: file(`${name}.key`) };
  };
  const signed = (name: string, issuer: { cert: string; key: string }, extensions: string) => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
    );
    const extFile = file(`${name}.ext`);
    execFileSync('sh', ['-c', `printf '%s\\n' "${extensions}" > ${extFile}`]);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      issuer.cert,
      '-CAkey',
      issuer.key,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      extFile,
      '-out',
      file(`${name}.pem`),
    );
    return { cert: file(`${name}.pem`), key: file(`${name}.key`) };
  };
  const authority = ca('test-ca');
  const stranger = ca('other-ca');
  const server = signed('server', authority, 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  const client = signed('client', authority, 'extendedKeyUsage=clientAuth');
  return { authority, stranger, server, client };
}

/** NATS over TLS with a certificate made by the test: the apps verify it, and refuse a wrong CA. */
describe('bus security: TLS to NATS (own nats-server, self-signed CA)', () => {
  const prefix = testNatsPrefix();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pf-tls-'));
  const certs = makeCertificates(dir);
  let server: SecuredNats;
  let mutual: SecuredNats;
  let database: TestDatabase;
  let casino: ServiceProcess | undefined;
  const open: NatsConnection[] = [];

  const connectAs = async (
    target: SecuredNats,
    user: BusUser,
    tls: { NATS_TLS_CA?: string; NATS_TLS_CERT?: string; NATS_TLS_KEY?: string },
  ) => {
    const connection = await connectTestNats(
      target.url,
      { maxReconnectAttempts: 0 },
      {
        user,
        prefix,
        security: { NATS_USER: user, NATS_PASSWORD: target.password(user), ...tls },
      },
    );
    open.push(connection);
    return connection;
  };

  beforeAll(async () => {
    server = await SecuredNats.start({
      prefix,
      tls: { certFile: certs.server.cert, keyFile: certs.server.key },
    });
    mutual = await SecuredNats.start({
      prefix,
      tls: {
        certFile: certs.server.cert,
        keyFile: certs.server.key,
        caFile: certs.authority.cert,
        verify: true,
      },
    });
    database = await createTestDatabase('bustls');
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((connection) => connection.close()));
    await casino?.stop();
    await Promise.all([server?.stop(), mutual?.stop()]);
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects when the server certificate is signed by NATS_TLS_CA', async () => {
    const connection = await connectAs(server, 'ops', { NATS_TLS_CA: certs.authority.cert });
    await expect(connection.flush()).resolves.toBeUndefined();
  });

  it('refuses a server whose certificate another CA signed', async () => {
    await expect(connectAs(server, 'ops', { NATS_TLS_CA: certs.stranger.cert })).rejects.toThrow(
      /certificate|self.signed|verify/i,
    );
  });

  it('mutual TLS: connects with a client certificate from the CA and is refused without one', async () => {
    await expect(connectAs(mutual, 'ops', { NATS_TLS_CA: certs.authority.cert })).rejects.toThrow();
    const connection = await connectAs(mutual, 'ops', {
      NATS_TLS_CA: certs.authority.cert,
      NATS_TLS_CERT: certs.client.cert,
      NATS_TLS_KEY: certs.client.key,
    });
    await expect(connection.flush()).resolves.toBeUndefined();
  });

  it('an app (casino) starts over TLS with its own user and answers commands', async () => {
    casino = await spawnService('casino', {
      env: {
        DATABASE_URL: database.url,
        NATS_PREFIX: prefix,
        ...server.envFor('casino'),
        NATS_TLS_CA: certs.authority.cert,
      },
    });
    await casino.waitUntilReady();
    const ops = await connectAs(server, 'ops', { NATS_TLS_CA: certs.authority.cert });
    const reply = await ops.request(`${prefix}.casino.cmd.ping`, '{}', { timeout: 5_000 });
    expect(reply.string()).toContain('"ok":true');
  }, 60_000);

  it('an nkey user (NATS_NKEY_SEED) connects over TLS with its permissions; a stranger seed is refused', async () => {
    const ops = nkeys.createUser();
    const stranger = nkeys.createUser();
    const seedFile = (name: string, pair: typeof ops) => {
      const target = path.join(dir, `${name}.nk`);
      writeFileSync(target, new TextDecoder().decode(pair.getSeed()), { mode: 0o600 });
      return target;
    };
    const keyed = await SecuredNats.start({
      prefix,
      nkeys: { ops: ops.getPublicKey() },
      tls: { certFile: certs.server.cert, keyFile: certs.server.key },
    });
    try {
      const connect = (seed: string) =>
        connectTestNats(
          keyed.url,
          { maxReconnectAttempts: 0 },
          { user: 'ops', prefix, security: { NATS_NKEY_SEED: seed, NATS_TLS_CA: certs.authority.cert } },
        );
      await expect(connect(seedFile('stranger', stranger))).rejects.toThrow(/Authorization Violation/i);
      const connection = await connect(seedFile('ops', ops));
      try {
        // The permissions come with the nkey user too: ops may not answer casino's commands.
        const errors: string[] = [];
        void (async () => {
          for await (const status of connection.status())
            if (status.type === 'error') errors.push(String((status as { error?: unknown }).error));
        })();
        connection.subscribe(`${prefix}.casino.cmd.>`);
        await connection.flush();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(errors.join('\n')).toMatch(/Permissions Violation for Subscription/);
      } finally {
        await connection.close();
      }
    } finally {
      await keyed.stop();
    }
  }, 30_000);

  it('an app refuses to start when NATS_TLS_CA names no readable file, naming the variable', async () => {
    const broken = await spawnService('casino', {
      env: {
        DATABASE_URL: database.url,
        NATS_PREFIX: prefix,
        ...server.envFor('casino'),
        NATS_TLS_CA: path.join(dir, 'missing.pem'),
      },
    });
    const { code } = await broken.exited;
    expect(code).toBe(1);
    expect(broken.output.join('\n')).toMatch(/invalid configuration: NATS_TLS_CA must name a readable file/);
  }, 30_000);
});
