// Compiles every TypeScript source under apps/, libs/ and tools/ to dist/ with SWC (ES modules,
// decorator metadata for NestJS) and links dist/node_modules/@pf/<lib> to the compiled
// library, so `import '@pf/money'` resolves at run time exactly as the tsconfig paths do.
// Then bundles the browser dashboard (apps/dashboard, Vite) into dist/dashboard, which the
// gateway serves at /dashboard (docs/adr/0018).
import { transformFile } from '@swc/core';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist');
const sourceDirs = ['apps', 'libs', 'tools'];
/** Browser code: bundled by Vite below, not compiled for Node. */
const dashboardDir = path.join(root, 'apps', 'dashboard');
const swcOptions = JSON.parse(await readFile(path.join(root, '.swcrc'), 'utf8'));
delete swcOptions.$schema;

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && full !== dashboardDir) yield* walk(full);
    } else if (
      entry.name.endsWith('.ts') &&
      !entry.name.endsWith('.test.ts') &&
      !entry.name.endsWith('.d.ts')
    ) {
      yield full;
    }
  }
}

async function compile(file) {
  const relative = path.relative(root, file);
  const target = path.join(outDir, relative.replace(/\.ts$/, '.js'));
  const output = await transformFile(file, {
    ...swcOptions,
    swcrc: false,
    filename: file,
    sourceFileName: path.relative(path.dirname(target), file),
  });
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, `${output.code}\n//# sourceMappingURL=${path.basename(target)}.map\n`);
  if (output.map) await writeFile(`${target}.map`, output.map);
}

async function linkLibraries() {
  const libs = await readdir(path.join(root, 'libs'), { withFileTypes: true });
  await mkdir(path.join(outDir, 'node_modules', '@pf'), { recursive: true });
  for (const lib of libs.filter((entry) => entry.isDirectory())) {
    const compiled = path.join(outDir, 'libs', lib.name);
    await mkdir(compiled, { recursive: true });
    const manifest = { name: `@pf/${lib.name}`, type: 'module', exports: './src/index.js' };
    await writeFile(path.join(compiled, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await symlink(
      path.join('..', '..', 'libs', lib.name),
      path.join(outDir, 'node_modules', '@pf', lib.name),
      'dir',
    );
  }
}

/**
 * The dashboard's bundle: hashed file names under /dashboard/assets/ (cached for a year by the
 * gateway), no inline script or data: URI (the gateway's CSP allows only 'self'), @pf/money
 * from its sources so the page formats money with the same code as the services.
 */
async function buildDashboard() {
  const { build } = await import('vite');
  await build({
    configFile: false,
    root: dashboardDir,
    base: '/dashboard/',
    logLevel: 'warn',
    esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
    resolve: { alias: { '@pf/money': path.join(root, 'libs', 'money', 'src', 'index.ts') } },
    build: {
      outDir: path.join(outDir, 'dashboard'),
      emptyOutDir: true,
      target: 'es2022',
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      reportCompressedSize: false,
    },
  });
}

const started = Date.now();
await rm(outDir, { recursive: true, force: true });
const files = [];
for (const dir of sourceDirs) {
  try {
    for await (const file of walk(path.join(root, dir))) files.push(file);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
}
await Promise.all(files.map(compile));
await writeFile(path.join(outDir, 'package.json'), '{ "type": "module" }\n');
await linkLibraries();
await buildDashboard();
console.log(`build: ${files.length} files compiled to dist/ in ${Date.now() - started} ms`);
