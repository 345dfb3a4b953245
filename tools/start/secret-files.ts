import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Keys the gateway reads from a file (ADR 0020): made once under the data dir, mode 600, so they
 * survive restarts and never appear in the environment, a log line or the database. An operator
 * who sets the variable (or its `_FILE`) keeps control; the launcher only fills the gap.
 */
export function ensureSecretFile(dataDir: string, variable: string, fileName: string): string | undefined {
  if (process.env[variable] || process.env[`${variable}_FILE`]) return undefined;
  const file = path.join(dataDir, fileName);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    // 32 random bytes, base64: an Ed25519 seed or an AES-256 key.
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  }
  process.env[`${variable}_FILE`] = file;
  return file;
}
