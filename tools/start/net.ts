import net from 'node:net';

/** How many ports after the preferred one the launcher tries before giving up. */
const PORT_SEARCH_MAX = 50;

/** True when nothing listens on host:port (we can bind it ourselves). */
export function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The preferred port when free, else the next free one after it (bounded search). */
export async function pickPort(preferred: number, host: string): Promise<number> {
  for (let port = preferred; port < preferred + PORT_SEARCH_MAX && port <= 65_535; port += 1) {
    if (await isPortFree(port, host)) return port;
  }
  throw new Error(`no free port in ${preferred}-${preferred + PORT_SEARCH_MAX - 1} on ${host}`);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** The promise's value, or undefined when it takes longer than `timeoutMs`. */
export async function waitAtMost<T>(promise: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
