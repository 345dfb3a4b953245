import { createHash } from 'node:crypto';

/**
 * Hex SHA-256 of a text: the building block of ids derived from their inputs (the same inputs
 * always name the same entity, so a retried command finds what its first try created). Here so
 * that pure domain code, which imports only @pf/contracts and @pf/money, can derive such ids.
 */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
