const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** JSON with bigint support: bigints travel as decimal strings, never as lossy numbers. */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(
    JSON.stringify(value, (_, item) => (typeof item === 'bigint' ? item.toString() : item)),
  );
}

export function decodeJson<T = unknown>(data: Uint8Array): T {
  return (data.length === 0 ? undefined : JSON.parse(decoder.decode(data))) as T;
}
