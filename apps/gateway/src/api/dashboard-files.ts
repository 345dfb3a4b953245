import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's files as the gateway serves them (docs/adr/0018): only `index.html` and the
 * flat, hashed files Vite writes to `assets/`; nothing else in the directory is reachable.
 */

/**
 * Only `self`: scripts and styles come from /dashboard/assets, data from this origin (fetch,
 * EventSource). No inline script or style element and no eval; setting `element.style` from a
 * script (charts, bar widths) is not inline CSS for CSP. No frames, no plugins, no <base>.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Hashed names never change content: a year, immutable. The page itself is always revalidated. */
export const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable';
export const PAGE_CACHE_CONTROL = 'no-cache';

/** What Vite emits, by extension; anything else is not served (no guessing, no sniffing). */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/**
 * A served asset name: one path segment of safe characters with a known extension. No `/`,
 * `\`, `%` or leading dot can pass, so no name can leave `assets/` (no `..`, no absolute path,
 * no encoded separator, no dotfile).
 */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

export function assetContentType(name: string): string | undefined {
  if (!ASSET_NAME.test(name) || name.includes('..')) return undefined;
  return CONTENT_TYPES[path.extname(name).toLowerCase()];
}

/**
 * Where `tools/build.mjs` writes the bundle: `dist/dashboard`. The compiled gateway runs from
 * `dist/apps/gateway/src/api/`; tests run this file from `apps/gateway/src/api/` and find the
 * same `dist/dashboard` of the checkout.
 */
export function defaultDashboardDir(moduleUrl: string = import.meta.url): string {
  const here = fileURLToPath(moduleUrl);
  const marker = `${path.sep}dist${path.sep}`;
  const distAt = here.lastIndexOf(marker);
  if (distAt >= 0) return path.join(here.slice(0, distAt + marker.length), 'dashboard');
  return path.resolve(path.dirname(here), '..', '..', '..', '..', 'dist', 'dashboard');
}

export interface DashboardFile {
  body: Buffer;
  contentType: string;
  cacheControl: string;
}

/** Reads and keeps the served files: a few hundred kB at most, never changing while running. */
export class DashboardFiles {
  private readonly cache = new Map<string, DashboardFile | null>();

  constructor(private readonly dir: string) {}

  page(): Promise<DashboardFile | null> {
    return this.load('index.html', 'text/html; charset=utf-8', PAGE_CACHE_CONTROL);
  }

  /** The asset, or null for a name that is not served or does not exist. */
  asset(name: string): Promise<DashboardFile | null> {
    const contentType = assetContentType(name);
    if (!contentType) return Promise.resolve(null);
    return this.load(path.join('assets', name), contentType, ASSET_CACHE_CONTROL);
  }

  private async load(
    relative: string,
    contentType: string,
    cacheControl: string,
  ): Promise<DashboardFile | null> {
    const cached = this.cache.get(relative);
    if (cached !== undefined) return cached;
    const full = path.join(this.dir, relative);
    // Belt and braces: the name check above already keeps every path inside the directory.
    if (!full.startsWith(path.resolve(this.dir) + path.sep)) return null;
    const body = await readFile(full).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'EISDIR') return null;
      throw error;
    });
    // A missing page is not remembered: a build after the start makes it appear.
    if (!body) return null;
    const file = { body, contentType, cacheControl };
    this.cache.set(relative, file);
    return file;
  }
}
