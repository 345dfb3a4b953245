import { formatUsd, parseMicros, parseUsd } from '@pf/money';

/** Amounts in public answers are at most this large; beyond it a JSON number is not exact. */
const MAX_DISPLAY_MICROS = 1_000_000_000n * 1_000_000n;

/**
 * Micro-dollars as the page shows them: `$1,234.50`, `-$0.000001`. Pure string work on the
 * bigint (through @pf/money's `formatUsd`), so no amount is ever rounded by a float: at least
 * two decimals, up to six when the amount has them, thousands grouped.
 */
export function usdText(micros: bigint): string {
  const plain = formatUsd(micros);
  const negative = plain.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? plain.slice(1) : plain).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '-' : ''}$${grouped}.${fraction.padEnd(2, '0')}`;
}

/** A micro-dollar string from an admin answer or an event (`"4950000"`). */
export function microsFrom(text: string): bigint {
  return parseMicros(text, 'micros');
}

/**
 * A USD JSON number from a public answer (`4.95`) to micros, exactly: read through the shortest
 * decimal that round-trips (what `parseUsd` does), never multiplied as a float.
 */
export function microsFromUsd(amountUsd: number): bigint {
  if (amountUsd < 0) return -parseUsd(-amountUsd, { allowZero: true, maxMicros: MAX_DISPLAY_MICROS });
  return parseUsd(amountUsd, { allowZero: true, maxMicros: MAX_DISPLAY_MICROS });
}

/** Whole-dollar float for chart axes only: never displayed as an amount, never summed into one. */
export function chartDollars(micros: bigint): number {
  return Number(micros) / 1_000_000;
}
