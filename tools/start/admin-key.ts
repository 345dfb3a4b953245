import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The operator key for /admin. `ADMIN_API_KEY` wins; otherwise a random key is made once and
 * kept in `<data dir>/admin-api-key` (mode 600), so a newcomer can credit an agent right away
 * and the key stays the same across restarts. Never a fixed, guessable default.
 */
export function resolveAdminKey(
  dataDir: string,
  fromEnv: string | undefined,
): { key: string; source: string } {
  if (fromEnv) return { key: fromEnv, source: 'ADMIN_API_KEY' };
  const file = path.join(dataDir, 'admin-api-key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), source: file };
  mkdirSync(dataDir, { recursive: true });
  const key = `admin_${randomBytes(24).toString('hex')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, source: file };
}
