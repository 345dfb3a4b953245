import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SubjectPrefix } from '@pf/contracts';
import {
  natsConnectOptions,
  natsSecurityOptions,
  NatsSecurityError,
  type NatsSecurityEnv,
} from './nats-security.js';

describe('NATS credentials and TLS from the environment', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pf-nats-security-'));
  const file = (name: string, text: string) => {
    const target = path.join(dir, name);
    writeFileSync(target, text, { mode: 0o600 });
    return target;
  };
  const pem = (kind: string) => `-----BEGIN ${kind}-----\nMIIB\n-----END ${kind}-----\n`;

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('adds nothing when nothing is set: a development broker needs no credentials', () => {
    expect(natsSecurityOptions({})).toEqual({});
    expect(natsSecurityOptions({ NATS_USER: '', NATS_TLS_CA: '' })).toEqual({});
  });

  it('gives each user its own inbox, under the deployment prefix', () => {
    const base = { servers: ['nats://127.0.0.1:4222'], name: 'casino-1', user: 'casino', security: {} };
    expect(natsConnectOptions({ ...base, prefix: new SubjectPrefix('') }).inboxPrefix).toBe('_INBOX_casino');
    expect(natsConnectOptions({ ...base, prefix: new SubjectPrefix('t0a') }).inboxPrefix).toBe(
      '_INBOX_t0a_casino',
    );
  });

  it('accepts a user and password, a token, or TLS with a CA and client certificate', () => {
    expect(
      natsSecurityOptions({ NATS_USER: 'casino', NATS_PASSWORD: 'secret' }).authenticator,
    ).toBeInstanceOf(Function);
    expect(natsSecurityOptions({ NATS_TOKEN: 'secret' }).authenticator).toBeInstanceOf(Function);
    const tls = natsSecurityOptions({
      NATS_TLS_CA: file('ca.pem', pem('CERTIFICATE')),
      NATS_TLS_CERT: file('client.pem', pem('CERTIFICATE')),
      NATS_TLS_KEY: file('client.key', pem('PRIVATE KEY')),
    }).tls;
    expect(tls).toMatchObject({
      ca: expect.stringContaining('CERTIFICATE'),
      key: expect.stringContaining('PRIVATE KEY'),
    });
  });

  it.each<[string, NatsSecurityEnv, RegExp]>([
    [
      'a user without password',
      { NATS_USER: 'casino' },
      /^invalid configuration: NATS_PASSWORD must be set when NATS_USER is set$/,
    ],
    ['a password without user', { NATS_PASSWORD: 'x' }, /^invalid configuration: NATS_USER must be set/],
    [
      'two ways to authenticate',
      { NATS_USER: 'casino', NATS_PASSWORD: 'x', NATS_TOKEN: 't' },
      /^invalid configuration: NATS_TOKEN cannot be combined with NATS_USER/,
    ],
    [
      'a creds file that is missing',
      { NATS_CREDS: '/nonexistent/app.creds' },
      /^invalid configuration: NATS_CREDS must name a readable file \(ENOENT/,
    ],
    [
      'a seed file that holds no seed',
      { NATS_NKEY_SEED: '<seed>' },
      /^invalid configuration: NATS_NKEY_SEED must name a file holding a user nkey seed/,
    ],
    [
      'a client certificate without its key',
      { NATS_TLS_CERT: '<cert>' },
      /^invalid configuration: NATS_TLS_KEY must be set when NATS_TLS_CERT is set/,
    ],
    [
      'a CA file that is not PEM',
      { NATS_TLS_CA: '<not-pem>' },
      /^invalid configuration: NATS_TLS_CA must name a PEM file/,
    ],
  ])('refuses %s, naming the variable and never the secret', (_case, given, message) => {
    const env = Object.fromEntries(
      Object.entries(given).map(([key, value]) => [
        key,
        value === '<seed>'
          ? file('seed', 'not a seed')
          : value === '<cert>'
            ? file('c.pem', pem('CERTIFICATE'))
            : value === '<not-pem>'
              ? file('ca.txt', 'hello')
              : value,
      ]),
    ) as NatsSecurityEnv;
    let thrown: unknown;
    try {
      natsSecurityOptions(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(NatsSecurityError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain('secret');
  });
});
