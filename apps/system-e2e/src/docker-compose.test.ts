import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { baseConfigSchema, env as envSchema, loadConfig } from '@pf/platform';
import { APP_NAMES, workspaceRoot } from '@pf/testing';

/**
 * Docker cannot run on the development machines, so docker-compose.yml, Dockerfile and
 * .dockerignore are checked statically against the code they deploy: the app entry points the
 * build produces, the configuration variables the apps read, the tools that exist inside each
 * image. `checkDeployment` returns every problem found; the real files must have none, and each
 * deliberate mistake below must be caught.
 */

const root = workspaceRoot();

interface DeploymentFiles {
  compose: string;
  dockerfile: string;
  dockerignore: string;
}

interface Healthcheck {
  test?: string[] | string;
}

interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string } | string;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean> | string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: Healthcheck;
  ports?: Array<string | number>;
  volumes?: string[];
}

interface Compose {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const EXPECTED_SERVICES = ['postgres', 'nats', ...APP_NAMES];
/** What each image ships that a healthcheck can run (FROM-scratch images ship nothing). */
const IMAGE_TOOLS: Array<[RegExp, string[]]> = [
  [/^postgres:/, ['pg_isready', 'psql', 'sh']],
  [/^nats:.*-alpine/, ['wget', 'sh']],
  [/^nats:/, []],
];
/** Our Dockerfile's runtime stage is node:20-slim: node and a shell, no curl or wget. */
const BUILT_IMAGE_TOOLS = ['node', 'sh'];
const NATS_CLIENT_PORT = '4222';

function readDeploymentFiles(): DeploymentFiles {
  return {
    compose: readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'),
    dockerfile: readFileSync(path.join(root, 'Dockerfile'), 'utf8'),
    dockerignore: readFileSync(path.join(root, '.dockerignore'), 'utf8'),
  };
}

function checkDeployment(files: DeploymentFiles): string[] {
  const problems: string[] = [];
  const document = parseDocument(files.compose, { merge: true });
  if (document.errors.length > 0)
    return document.errors.map((error) => `docker-compose.yml does not parse: ${error.message}`);
  const compose = document.toJS() as Compose;
  const services = compose.services ?? {};

  // Compose interpolates $VAR and ${VAR}; a literal dollar must be written $$. The intended forms
  // are ${VAR:-default} (the bus passwords, ADR 0010) and, for the gateway's keys only, ${VAR:-}
  // (no default on purpose: checkGatewayKeys).
  const withDefaults = /\$\{[A-Z][A-Z0-9_]*:-[^}$]+\}/g;
  const gatewayKeys = new RegExp(GATEWAY_KEYS.map((key) => `\\$\\{${key}:-\\}`).join('|'), 'g');
  const uninterpolated = files.compose
    .replace(/\$\$/g, '')
    .replace(withDefaults, '')
    .replace(gatewayKeys, '');
  if (/\$(?!\$)/.test(uninterpolated))
    problems.push(
      'docker-compose.yml has a "$" that compose would interpolate (write $$, or ${VAR:-default} on purpose)',
    );
  const names = Object.keys(services).sort();
  if (JSON.stringify(names) !== JSON.stringify([...EXPECTED_SERVICES].sort()))
    problems.push(`services are ${names.join(', ')}, expected ${EXPECTED_SERVICES.join(', ')}`);

  for (const [name, service] of Object.entries(services)) {
    if (!service.image && !service.build) problems.push(`${name} has neither image nor build`);
    problems.push(...checkHealthcheckTool(name, service));
    problems.push(...checkNamedVolumes(name, service, compose));
  }
  if (services.postgres) problems.push(...checkPostgres(services.postgres));
  if (services.nats) problems.push(...checkNats(services.nats));
  for (const app of APP_NAMES) {
    if (services[app]) problems.push(...checkApp(app, services[app], services.postgres));
  }
  problems.push(...checkDockerfile(files));
  return problems;
}

function healthcheckArgv(service: Service): string[] {
  const test = service.healthcheck?.test;
  if (!test) return [];
  if (typeof test === 'string') return ['CMD-SHELL', test];
  return test;
}

function checkHealthcheckTool(name: string, service: Service): string[] {
  const argv = healthcheckArgv(service);
  if (argv.length < 2 || !['CMD', 'CMD-SHELL'].includes(argv[0]!))
    return [`${name} has no healthcheck (test: [CMD, …] or [CMD-SHELL, …])`];
  const tool = argv[0] === 'CMD' ? argv[1]! : argv[1]!.trim().split(/\s+/)[0]!;
  const tools = service.build
    ? BUILT_IMAGE_TOOLS
    : (IMAGE_TOOLS.find(([pattern]) => pattern.test(service.image ?? ''))?.[1] ?? []);
  if (argv[0] === 'CMD-SHELL' && !tools.includes('sh'))
    return [`${name}'s healthcheck needs a shell, which ${service.image} does not have`];
  return tools.includes(tool)
    ? []
    : [`${name}'s healthcheck runs ${tool}, which ${service.image ?? 'the built image'} does not have`];
}

function volumeMounts(service: Service): Array<{ source: string; target: string }> {
  return (service.volumes ?? []).map((volume) => {
    const [source, target] = String(volume).split(':');
    return { source: source!, target: target ?? source! };
  });
}

function checkNamedVolumes(name: string, service: Service, compose: Compose): string[] {
  return volumeMounts(service)
    .filter((mount) => !mount.source.startsWith('.') && !mount.source.startsWith('/'))
    .filter((mount) => !(mount.source in (compose.volumes ?? {})))
    .map((mount) => `${name} mounts volume ${mount.source}, which is not declared under volumes:`);
}

function checkPostgres(service: Service): string[] {
  const problems: string[] = [];
  if (!/^postgres:17(\b|$)/.test(service.image ?? ''))
    problems.push(`postgres image is ${service.image}, expected postgres:17`);
  if (!volumeMounts(service).some((mount) => mount.target === '/var/lib/postgresql/data'))
    problems.push('postgres keeps its data outside a volume (/var/lib/postgresql/data)');
  if (!healthcheckArgv(service).join(' ').includes('pg_isready'))
    problems.push('postgres healthcheck does not use pg_isready');
  if ((service.ports ?? []).length > 0)
    problems.push('postgres publishes a port: it would clash with a local Postgres');
  return problems;
}

function argAfter(argv: string[], ...flags: string[]): string | undefined {
  const index = argv.findIndex((arg) => flags.includes(arg));
  return index >= 0 ? argv[index + 1] : undefined;
}

function checkNats(service: Service): string[] {
  const problems: string[] = [];
  const argv = Array.isArray(service.command) ? service.command : String(service.command ?? '').split(/\s+/);
  if (!/^nats:2\.\d+/.test(service.image ?? ''))
    problems.push(`nats image is ${service.image}, expected nats:2.x`);
  if (!argv.includes('-js') && !argv.includes('--jetstream'))
    problems.push('nats runs without JetStream (-js)');
  const storeDir = argAfter(argv, '-sd', '--store_dir');
  if (!storeDir) problems.push('nats has no JetStream store directory (-sd)');
  else if (!volumeMounts(service).some((mount) => mount.target === storeDir))
    problems.push(`nats stores JetStream in ${storeDir}, but no volume is mounted there`);
  const monitorPort = argAfter(argv, '-m', '--http_port');
  const health = healthcheckArgv(service).join(' ');
  if (!monitorPort) problems.push('nats has no monitoring port (-m) for its healthcheck');
  else if (!health.includes(`:${monitorPort}/healthz`))
    problems.push(`nats healthcheck does not ask /healthz on the monitoring port ${monitorPort}`);
  for (const mapping of service.ports ?? []) {
    if (!String(mapping).startsWith('127.0.0.1:'))
      problems.push(`nats publishes ${mapping} beyond the host's loopback`);
  }
  return problems;
}

/** Variables an app reads: the shared schema's keys plus those its own config.ts adds. */
function appConfigKeys(app: string): Set<string> {
  const source = readFileSync(path.join(root, 'apps', app, 'src', 'config.ts'), 'utf8');
  const own = [...source.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)].map((match) => match[1]!);
  return new Set([...Object.keys(baseConfigSchema.shape), ...own]);
}

function environmentOf(service: Service): Record<string, string> {
  const raw = service.environment ?? {};
  if (Array.isArray(raw))
    return Object.fromEntries(raw.map((item) => item.split(/=(.*)/s).slice(0, 2) as [string, string]));
  return Object.fromEntries(Object.entries(raw).map(([key, value]) => [key, String(value)]));
}

function checkApp(app: string, service: Service, postgres: Service | undefined): string[] {
  const problems: string[] = [];
  const build = typeof service.build === 'string' ? { context: service.build } : service.build;
  if (!build || path.resolve(root, build.context ?? '.') !== root)
    problems.push(`${app} is not built from the repository root`);
  else if (!existsSync(path.join(root, build.context ?? '.', build.dockerfile ?? 'Dockerfile')))
    problems.push(`${app} builds with a Dockerfile that does not exist`);

  const command = Array.isArray(service.command)
    ? service.command
    : String(service.command ?? '').split(/\s+/);
  const entry = `dist/apps/${app}/src/main.js`;
  if (command[0] !== 'node' || command[1] !== entry)
    problems.push(`${app} command is ${JSON.stringify(service.command)}, expected node ${entry}`);
  // tools/build.mjs compiles apps/<app>/src/main.ts to exactly that path.
  if (!existsSync(path.join(root, 'apps', app, 'src', 'main.ts')))
    problems.push(`apps/${app}/src/main.ts does not exist, so the image has no ${entry}`);

  const dependsOn = service.depends_on ?? {};
  for (const dependency of ['postgres', 'nats']) {
    const condition = Array.isArray(dependsOn) ? undefined : dependsOn[dependency]?.condition;
    if (condition !== 'service_healthy')
      problems.push(
        `${app} does not wait for ${dependency} to be healthy (depends_on condition: service_healthy)`,
      );
  }

  problems.push(...checkAppEnvironment(app, environmentOf(service), postgres));
  const health = healthcheckArgv(service).join(' ');
  if (!health.includes('/health') || !health.includes('process.env.PORT'))
    problems.push(`${app} healthcheck does not ask /health on its PORT`);

  const ports = (service.ports ?? []).map(String);
  const port = environmentOf(service).PORT;
  if (app === 'gateway') {
    problems.push(...checkGatewayKeys(environmentOf(service)));
    if (JSON.stringify(ports) !== JSON.stringify([`3000:${port}`]))
      problems.push(`gateway publishes ${JSON.stringify(ports)}, expected ["3000:${port}"] (its PORT)`);
  } else if (ports.length > 0) {
    problems.push(`${app} publishes ${ports.join(', ')}: only the gateway is public`);
  }
  return problems;
}

function checkAppEnvironment(
  app: string,
  environment: Record<string, string>,
  postgres: Service | undefined,
): string[] {
  const problems: string[] = [];
  const known = appConfigKeys(app);
  for (const key of Object.keys(environment)) {
    if (!known.has(key)) problems.push(`${app} sets ${key}, which the app does not read`);
  }
  try {
    loadConfig(baseConfigSchema.extend({ PORT: envSchema.port(0) }), environment);
  } catch (error) {
    problems.push(`${app}: ${(error as Error).message}`);
  }
  if (environment.HOST !== '0.0.0.0')
    problems.push(
      `${app} listens on ${environment.HOST ?? '127.0.0.1 (default)'}: unreachable from other containers (HOST=0.0.0.0)`,
    );
  if (!environment.PORT) problems.push(`${app} has no PORT`);

  const database = safeUrl(environment.DATABASE_URL);
  const postgresEnv = postgres ? environmentOf(postgres) : {};
  const expected = {
    hostname: 'postgres',
    port: '5432',
    username: postgresEnv.POSTGRES_USER ?? 'postgres',
    password: postgresEnv.POSTGRES_PASSWORD ?? '',
    pathname: `/${postgresEnv.POSTGRES_DB ?? postgresEnv.POSTGRES_USER ?? 'postgres'}`,
  };
  const actual = database && {
    hostname: database.hostname,
    port: database.port || '5432',
    username: database.username,
    password: database.password,
    pathname: database.pathname,
  };
  if (JSON.stringify(actual) !== JSON.stringify(expected))
    problems.push(
      `${app} DATABASE_URL does not match the postgres service: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`,
    );

  const nats = safeUrl(environment.NATS_URL);
  if (nats?.hostname !== 'nats' || (nats.port || NATS_CLIENT_PORT) !== NATS_CLIENT_PORT)
    problems.push(`${app} NATS_URL ${environment.NATS_URL} is not the nats service on ${NATS_CLIENT_PORT}`);
  return problems;
}

/**
 * Keys the gateway must get in Docker (ADR 0020): without RECEIPT_SIGNING_KEY each container start
 * signs receipts with a new key, without WEBHOOK_SECRETS_KEY the webhook routes answer 503. Both
 * come from the shell or .env only, `${VAR:-}`: a default written here would be public, and a
 * public signing key lets anyone forge receipts.
 */
const GATEWAY_KEYS = ['RECEIPT_SIGNING_KEY', 'WEBHOOK_SECRETS_KEY'];

function checkGatewayKeys(environment: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const key of GATEWAY_KEYS) {
    const value = environment[key];
    if (value === undefined) {
      problems.push(`gateway is not given ${key}`);
      continue;
    }
    if (value !== `\${${key}:-}`)
      problems.push(`gateway's ${key} is written into the file or has a default, not only \${${key}:-}`);
  }
  return problems;
}

function safeUrl(value: string | undefined): URL | undefined {
  try {
    return value ? new URL(value) : undefined;
  } catch {
    return undefined;
  }
}

interface Stage {
  from: string;
  name?: string;
  instructions: Array<{ keyword: string; args: string }>;
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  for (const line of logical) {
    const [keyword, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword!.toUpperCase() === 'FROM') {
      const [from, as, name] = rest;
      stages.push({ from: from!, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword!.toUpperCase(), args });
    }
  }
  return stages;
}

function workdirOf(stage: Stage): string {
  return stage.instructions.filter((instruction) => instruction.keyword === 'WORKDIR').at(-1)?.args ?? '/';
}

function checkDockerfile(files: DeploymentFiles): string[] {
  const problems: string[] = [];
  const stages = parseDockerfile(files.dockerfile);
  const runtime = stages.at(-1);
  if (!runtime) return ['Dockerfile has no FROM'];
  if (runtime.from !== 'node:20-slim')
    problems.push(`the runtime stage is FROM ${runtime.from}, expected node:20-slim`);

  const build = stages.find((stage) =>
    stage.instructions.some(
      (instruction) => instruction.keyword === 'RUN' && instruction.args.includes('npm run build'),
    ),
  );
  if (!build) return [...problems, 'no Dockerfile stage runs npm run build'];
  const runs = build.instructions
    .filter((instruction) => instruction.keyword === 'RUN')
    .map((instruction) => instruction.args);
  if (!runs.some((run) => run.includes('npm ci')))
    problems.push('the build stage does not install with npm ci');

  // Whatever tools/build.mjs reads must be in the build context and copied into the build stage.
  const buildScript = readFileSync(path.join(root, 'tools', 'build.mjs'), 'utf8');
  const sourceDirs = [
    ...(buildScript.match(/sourceDirs = \[([^\]]*)\]/)?.[1] ?? '').matchAll(/'([^']+)'/g),
  ].map((match) => match[1]!);
  const needed = [
    'package.json',
    'package-lock.json',
    ...(buildScript.includes('.swcrc') ? ['.swcrc'] : []),
    ...sourceDirs,
  ];
  const copied = build.instructions
    .filter((instruction) => instruction.keyword === 'COPY')
    .flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1));
  const ignored = files.dockerignore
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  for (const item of needed) {
    if (!copied.includes(item))
      problems.push(`the build stage does not COPY ${item}, which npm run build needs`);
    if (ignored.some((pattern) => pattern === item || pattern === `${item}/` || pattern === '*'))
      problems.push(`.dockerignore excludes ${item}, which npm run build needs`);
  }

  // The runtime stage must hold <WORKDIR>/dist from the build stage: compose runs `node dist/apps/…` relative to it.
  const runtimeWorkdir = workdirOf(runtime);
  const copiesDist = runtime.instructions.some((instruction) => {
    if (instruction.keyword !== 'COPY') return false;
    const parts = instruction.args.split(/\s+/);
    const fromStage = parts.find((part) => part.startsWith('--from='))?.slice('--from='.length);
    const [source, target] = parts.filter((part) => !part.startsWith('--'));
    return (
      fromStage === build.name &&
      path.posix.resolve(workdirOf(build), source ?? '') === path.posix.join(workdirOf(build), 'dist') &&
      path.posix.resolve(runtimeWorkdir, target ?? '') === path.posix.join(runtimeWorkdir, 'dist')
    );
  });
  if (!copiesDist)
    problems.push(`the runtime stage does not copy the build stage's dist/ to ${runtimeWorkdir}/dist`);
  const runtimeCopies = runtime.instructions
    .filter((instruction) => instruction.keyword === 'COPY')
    .map((instruction) => instruction.args);
  // The apps read their version from the root package.json at run time.
  if (!runtimeCopies.some((args) => args.split(/\s+/).includes('package.json')))
    problems.push('the runtime stage has no package.json (the apps read their version from it)');
  return problems;
}

describe('docker-compose.yml, Dockerfile and .dockerignore', () => {
  const files = readDeploymentFiles();

  it('deploy what the code expects: no problems found', () => {
    expect(checkDeployment(files)).toEqual([]);
  });

  const replace = (file: keyof DeploymentFiles, from: string, to: string) => (original: DeploymentFiles) => {
    expect(original[file]).toContain(from);
    return { ...original, [file]: original[file].replace(from, to) };
  };

  it.each<[string, (files: DeploymentFiles) => DeploymentFiles, RegExp]>([
    ['invalid YAML', replace('compose', 'services:', 'services: ['), /does not parse/],
    ['NATS without JetStream', replace('compose', "'-js', ", ''), /nats runs without JetStream/],
    [
      'the JetStream store outside the volume',
      replace('compose', "'-sd', '/data'", "'-sd', '/store'"),
      /no volume is mounted there/,
    ],
    [
      'a healthcheck tool the image lacks',
      replace('compose', 'image: nats:2.10-alpine', 'image: nats:2.10'),
      /runs wget, which nats:2\.10 does not have/,
    ],
    [
      'a wrong entry point',
      replace('compose', 'dist/apps/escrow/src/main.js', 'dist/apps/escrow/main.js'),
      /escrow command is/,
    ],
    [
      'a misspelt variable',
      replace('compose', 'NATS_URL: nats://nats:4222', 'NATS_SERVERS: nats://nats:4222'),
      /sets NATS_SERVERS, which the app does not read/,
    ],
    [
      'an invalid value',
      replace('compose', 'LOG_LEVEL: info', 'LOG_LEVEL: chatty'),
      /LOG_LEVEL must be one of/,
    ],
    [
      'apps listening on loopback only',
      replace('compose', 'HOST: 0.0.0.0', 'HOST: 127.0.0.1'),
      /unreachable from other containers/,
    ],
    [
      'a password the database does not have',
      replace('compose', 'postgres:postgres@postgres', 'postgres:secret@postgres'),
      /DATABASE_URL does not match the postgres service/,
    ],
    [
      'not waiting for healthy servers',
      replace('compose', 'condition: service_healthy', 'condition: service_started'),
      /does not wait for postgres to be healthy/,
    ],
    [
      'the gateway port not published',
      replace('compose', "- '3000:3000'", "- '3001:3000'"),
      /gateway publishes \["3001:3000"\]/,
    ],
    [
      'an interpolated dollar',
      replace('compose', "'/health'", "'/health?x=$X'"),
      /compose would interpolate/,
    ],
    [
      'the gateway without its receipt key',
      (original) => ({
        ...original,
        compose: original.compose.replace(/^ +RECEIPT_SIGNING_KEY:.*\n/m, ''),
      }),
      /gateway is not given RECEIPT_SIGNING_KEY/,
    ],
    [
      'the gateway without its webhook key',
      (original) => ({
        ...original,
        compose: original.compose.replace(/^ +WEBHOOK_SECRETS_KEY:.*\n/m, ''),
      }),
      /gateway is not given WEBHOOK_SECRETS_KEY/,
    ],
    [
      'a default signing key written into the file',
      replace(
        'compose',
        '${RECEIPT_SIGNING_KEY:-}',
        '${RECEIPT_SIGNING_KEY:-Y2hhbmdlLW1lLXJlY2VpcHQtc2lnbmluZy1rZXktMzI=}',
      ),
      /RECEIPT_SIGNING_KEY is written into the file or has a default/,
    ],
    [
      'a webhook key written into the file',
      replace('compose', '${WEBHOOK_SECRETS_KEY:-}', 'Y2hhbmdlLW1lLXdlYmhvb2stc2VjcmV0cy1rZXktMzI='),
      /WEBHOOK_SECRETS_KEY is written into the file or has a default/,
    ],
    ['a source directory not copied', replace('dockerfile', 'COPY libs ./libs\n', ''), /does not COPY libs/],
    [
      'dist not copied to the runtime stage',
      replace('dockerfile', 'COPY --from=build /app/dist ./dist', 'COPY --from=build /app/dist ./build'),
      /does not copy the build stage's dist/,
    ],
    [
      'a source directory ignored',
      replace('dockerignore', 'node_modules\n', 'node_modules\napps\n'),
      /\.dockerignore excludes apps/,
    ],
  ])('catches %s', (_name, mutate, problem) => {
    const problems = checkDeployment(mutate(files));
    expect(problems.join('\n')).toMatch(problem);
  });
});
