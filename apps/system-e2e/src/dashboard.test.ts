import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import playwright, { type Browser, type Page } from 'playwright-core';
import { deadLetterHeaders, deadLetterStream, SubjectPrefix } from '@pf/contracts';
import {
  connectTestNats,
  createTestDatabase,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  workspaceRoot,
  type TestDatabase,
  type TestSystem,
  runOps,
} from '@pf/testing';
import { ApiClient, missingKeys, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'dashboard-e2e-admin-key-0123456789';
/** Debian's chromium (apt-get install chromium; .ci/run installs it when missing). */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS_DIR = path.join(workspaceRoot(), 'test-artifacts', 'dashboard');
/** How long the page may take to show what the API just did (SSE + a debounced refresh). */
const LIVE_TIMEOUT_MS = 15_000;

/**
 * The dashboard in a real browser against a running system: the page is served by the gateway
 * from `npm run build`'s bundle, follows the public SSE feeds, and shows a lifecycle done through
 * the API without a reload; the operator view refuses a wrong key and shows the books at zero.
 * Every console error fails the test (a CSP violation is one). Screenshots go to
 * test-artifacts/dashboard/.
 */
describe('dashboard (Playwright, Debian chromium)', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  let lifecycleEscrowId = '';
  let awardedEscrowId = '';
  const natsPrefix = testNatsPrefix();

  const screenshot = async (name: string) => {
    const file = path.join(ARTIFACTS_DIR, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`dashboard screenshot: ${path.relative(workspaceRoot(), file)}`);
  };

  beforeAll(async () => {
    await mkdir(ARTIFACTS_DIR, { recursive: true });
    database = await createTestDatabase('dashboarde2e');
    system = await startSystem(
      {
        DATABASE_URL: database.url,
        NATS_URL: testNatsUrl(),
        NATS_PREFIX: natsPrefix,
        ADMIN_API_KEY,
        RATE_LIMIT_PER_IP_PER_MINUTE: '0',
        RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
        FAUCET_IP_LIMIT_PER_DAY: '0',
      },
      undefined,
      // Five apps and a browser on a shared 2-core machine: give readiness room.
      { readyTimeoutMs: 120_000 },
    );
    api = new ApiClient(system.gatewayUrl);
    browser = await playwright.chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (message) => {
      // With the resource's address: a failed request names only its status in the text.
      if (message.type() === 'error') consoleErrors.push(`${message.text()} ${message.location().url}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await system?.stop();
    await database?.drop();
  });

  it('serves the page with a self-only CSP, hashed assets cached for a year, and no path out of its folder', async () => {
    const pageAnswer = await fetch(`${system.gatewayUrl}/dashboard`);
    expect(pageAnswer.status).toBe(200);
    expect(pageAnswer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(pageAnswer.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(pageAnswer.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    const html = await pageAnswer.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const script = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${system.gatewayUrl}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    for (const probe of [
      '/dashboard/assets/..%2Findex.html',
      '/dashboard/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/dashboard/assets/..%5C..%5Cpackage.json',
      '/dashboard/assets/.env',
      '/dashboard/assets/index.html',
      '/dashboard/../package.json',
    ]) {
      const answer = await fetch(`${system.gatewayUrl}${probe}`);
      expect([probe, answer.status]).toEqual([probe, 404]);
    }
    // The landing page's link leads here.
    const landing = await (await fetch(`${system.gatewayUrl}/`, { headers: { accept: 'text/html' } })).text();
    expect(landing).toContain('href="/dashboard"');
  });

  it('shows a lifecycle done through the API live, without a reload', async () => {
    await page.goto(`${system.gatewayUrl}/dashboard`);
    await page.getByTestId('escrow-feed-state').filter({ hasText: 'connected' }).waitFor();
    await page.getByTestId('jobs-feed-state').filter({ hasText: 'connected' }).waitFor();
    const loadedAt = await page.evaluate(() => performance.timeOrigin);
    // The chart opens with the past 24 hours from GET /escrow/stats/history, not one live sample.
    const chart = page.getByTestId('volume-chart');
    await page.locator('[data-testid="volume-chart"][data-source="history"]').waitFor();
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(24);
    expect(await chart.locator('canvas').count()).toBeGreaterThan(0);

    const [creator, worker]: Agent[] = await Promise.all([api.register(), api.register()]);
    const claim = await api.call('POST', '/faucet/claim', {
      body: { agent_casino_id: creator!.agentId },
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(claim.status).toBe(200);
    await api.credit(ADMIN_API_KEY, creator!.agentId, 20);
    const created = await api.post<{ escrow_id: string }>(
      '/escrow/create',
      { amount_usd: 5, description: 'dashboard lifecycle', counterparty_agent_id: worker!.agentId },
      creator!.apiKey,
    );
    expect(created.status).toBe(201);
    const escrowId = created.body.escrow_id;
    expect((await api.post(`/escrow/complete/${escrowId}`, {}, worker!.apiKey)).status).toBe(200);
    expect((await api.post(`/escrow/release/${escrowId}`, {}, creator!.apiKey)).status).toBe(200);

    const events = page.getByTestId('events');
    await events.getByText(escrowId).first().waitFor({ timeout: LIVE_TIMEOUT_MS });
    await events.locator('li', { hasText: 'released' }).filter({ hasText: escrowId }).waitFor();
    // $5 released, 1% commission: exact strings from micros.
    await page.getByTestId('total-volume').filter({ hasText: '$5.00' }).waitFor({ timeout: LIVE_TIMEOUT_MS });
    await page.getByTestId('total-commission').filter({ hasText: '$0.05' }).waitFor();
    // The current hour's bucket follows live, to the micro.
    await page.getByTestId('hour-volume').filter({ hasText: '$5.00' }).waitFor({ timeout: LIVE_TIMEOUT_MS });
    await page.getByTestId('hour-commission').filter({ hasText: '$0.05' }).waitFor();
    const hourly = await api.get<{
      bucket: string;
      buckets: Array<{
        start: string;
        released_count: number;
        volume_micros: string;
        commission_micros: string;
      }>;
    }>('/escrow/stats/history?bucket=hour&limit=48');
    expect(hourly.status).toBe(200);
    expect(hourly.body.buckets).toHaveLength(48);
    expect(hourly.body.buckets.at(-1)).toMatchObject({
      released_count: 1,
      volume_usd: 5,
      volume_micros: '5000000',
      commission_usd: 0.05,
      commission_micros: '50000',
    });
    // A fresh database: the hours before are zeros, present so the axis is continuous.
    expect(hourly.body.buckets.slice(0, -2).every((bucket) => bucket.volume_micros === '0')).toBe(true);
    for (const query of ['bucket=week', 'limit=169', 'bucket=day&limit=91', 'limit=0', 'limit=2.5']) {
      const refused = await api.get<{ error: string }>(`/escrow/stats/history?${query}`);
      expect([query, refused.status, refused.body.error]).toEqual([query, 400, 'invalid_history_query']);
    }
    await page
      .getByRole('table', { name: 'Escrows by state' })
      .locator('tr', { hasText: 'released' })
      .getByText('1', { exact: true })
      .waitFor();

    const posted = await api.post<{ job_id: string }>(
      '/jobs',
      { title: 'Dashboard job', description: 'Shown live on the board', budget_usd: 3 },
      creator!.apiKey,
    );
    expect(posted.status).toBe(201);
    const jobId = posted.body.job_id;
    await page.getByTestId('open-jobs').getByText(jobId).waitFor({ timeout: LIVE_TIMEOUT_MS });
    const bid = await api.post<{ bid_id: string }>(
      `/jobs/${jobId}/bids`,
      { price_usd: 2.5, eta_minutes: 5 },
      worker!.apiKey,
    );
    expect(bid.status).toBe(201);
    const award = await api.post<{ awards: Array<{ escrow_id: string }> }>(
      `/jobs/${jobId}/award`,
      { bid_id: bid.body.bid_id },
      creator!.apiKey,
    );
    expect(award.status).toBe(200);
    const awardedEscrow = award.body.awards[0]!.escrow_id;
    await page.getByTestId('awards').getByText(awardedEscrow).waitFor({ timeout: LIVE_TIMEOUT_MS });
    await page.getByTestId('awards').locator('tr', { hasText: awardedEscrow }).getByText('$2.50').waitFor();
    await events.locator('li', { hasText: 'job_awarded' }).first().waitFor();

    // Everything above arrived in the page that was loaded before it happened.
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(loadedAt);
    await screenshot('public');
    expect(consoleErrors).toEqual([]);
    // A page opened now starts from the history: this hour's release is there without any event.
    const fresh = await browser.newPage();
    try {
      await fresh.goto(`${system.gatewayUrl}/dashboard`);
      await fresh.getByTestId('hour-volume').filter({ hasText: '$5.00' }).waitFor();
      await fresh.locator('[data-testid="volume-chart"][data-source="history"]').waitFor();
    } finally {
      await fresh.close();
    }
    lifecycleEscrowId = escrowId;
    awardedEscrowId = awardedEscrow;
  }, 60_000);

  it('operator view: refuses a wrong key, then shows the books at zero, the checks, streams and an escrow history', async () => {
    await page.getByRole('link', { name: 'Operator' }).click();
    const keyInput = page.getByLabel('Admin key');
    await keyInput.fill('not-the-admin-key-0000000000');
    await page.getByRole('button', { name: 'Open operator view' }).click();
    await page.getByTestId('refusal').filter({ hasText: '401 unauthorized' }).waitFor();
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    await screenshot('operator-refused');

    await keyInput.fill(ADMIN_API_KEY);
    await page.getByRole('button', { name: 'Open operator view' }).click();
    // The books' sum over every account, system ones included, reads exactly zero.
    await page.getByTestId('books-sum').filter({ hasText: '$0.00' }).waitFor();
    const accounts = page.getByTestId('accounts');
    for (const account of ['world', 'faucet_treasury', 'house_revenue', 'escrow_holding'])
      await accounts.getByText(account, { exact: true }).waitFor();
    await page.getByTestId('ledger-check').filter({ hasText: 'ok' }).waitFor({ timeout: LIVE_TIMEOUT_MS });
    await page.getByTestId('streams').getByText('ESCROW_EVENTS').waitFor();
    // The awarded job's escrow is funded: its deadline (a refund if never completed) is listed.
    await page
      .getByTestId('deadlines')
      .locator('tr', { hasText: awardedEscrowId })
      .getByText('refund')
      .waitFor();
    await page.getByTestId('saga').filter({ hasText: 'Lag:' }).waitFor();
    await page.getByTestId('dead-letters-empty').waitFor();

    await page.getByLabel('Agent or escrow id').fill(lifecycleEscrowId);
    await page.getByRole('button', { name: 'Show history' }).click();
    const result = page.getByTestId('search-result');
    await result.getByText('released', { exact: true }).waitFor();
    await result.getByText('$5.00 from', { exact: false }).waitFor();
    await result.getByText('commission $0.05', { exact: false }).waitFor();

    // The key is in this tab's sessionStorage, never in the address.
    expect(page.url()).not.toContain(ADMIN_API_KEY);
    expect(await page.evaluate<string[]>('Object.values({ ...sessionStorage })')).toContain(ADMIN_API_KEY);
    await screenshot('operator');
    // The wrong key's 401s, and the documented 404 of a deployment where ops verify never ran.
    expect(
      consoleErrors.filter((text) => !/401/.test(text) && !/404.*\/admin\/verify\/last$/.test(text)),
    ).toEqual([]);
  }, 60_000);

  it('operator view: the cross-checks panel says never run, then shows the result `ops verify all` recorded', async () => {
    const before = await api.get('/admin/verify/last', ADMIN_API_KEY);
    expect([before.status, before.body.error]).toEqual([404, 'no_verify_result']);
    await page.getByTestId('cross-checks').filter({ hasText: 'never run' }).waitFor();

    const startedAtMs = Date.now();
    const outcome = await runOps(['verify', 'all', '--grace', '0'], {
      databaseUrl: database.url,
      natsPrefix: natsPrefix,
    });
    expect(outcome.output).toMatch(/no violations/);
    expect(outcome.output).not.toMatch(/not recorded/);
    expect(outcome.code).toBe(0);

    const last = await api.get<{
      finished_at: string;
      ok: boolean;
      violations: number;
      selection: string;
      services_verified: string[];
      checks: Array<{ name: string; status: string; violations: number }>;
      lines: string[];
    }>('/admin/verify/last', ADMIN_API_KEY);
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ ok: true, violations: 0, selection: 'all', lines: [] });
    expect(Date.parse(last.body.finished_at)).toBeGreaterThanOrEqual(startedAtMs);
    expect([...last.body.services_verified].sort()).toEqual(['casino', 'escrow', 'faucet', 'market']);
    const crossChecks = last.body.checks.filter((check) => !last.body.services_verified.includes(check.name));
    expect(crossChecks).toEqual([
      { name: 'holds vs escrows', status: 'ran', violations: 0 },
      { name: 'faucet claims vs treasury transfers', status: 'ran', violations: 0 },
      { name: 'market awards vs escrows', status: 'ran', violations: 0 },
    ]);

    // The panel refreshes on its own: ok, each check, and the run's time.
    const panel = page.getByTestId('cross-checks').filter({ hasText: 'ok' });
    await panel.getByText('market awards vs escrows: ok').waitFor({ timeout: LIVE_TIMEOUT_MS });
    expect(await panel.locator('time').getAttribute('datetime')).toBe(last.body.finished_at);
    await screenshot('operator-cross-checks');
  }, 90_000);

  it('operator view: lists a dead letter and re-drives it to its original subject', async () => {
    const prefix = new SubjectPrefix(natsPrefix);
    const nats = await connectTestNats();
    try {
      // A dead letter as a consumer writes one: a well-formed event of a type no service acts on
      // (the gateway's receipts consumer reads every faucet event and skips this one), so the
      // re-driven copy is consumed without effect instead of failing into the dead letters again.
      const originalSubject = prefix.subject('faucet.events.redrive_probe');
      const headers = natsHeaders();
      headers.set(deadLetterHeaders.subject, originalSubject);
      headers.set(deadLetterHeaders.stream, prefix.streamName('FAUCET_EVENTS'));
      headers.set(deadLetterHeaders.streamSequence, '1');
      headers.set(deadLetterHeaders.consumer, 'dashboard-probe');
      headers.set(deadLetterHeaders.deliveries, '5');
      headers.set(deadLetterHeaders.error, 'probe failure for the dashboard test');
      headers.set(deadLetterHeaders.msgId, randomUUID());
      headers.set(deadLetterHeaders.failedAt, new Date().toISOString());
      const probe = JSON.stringify({
        id: randomUUID(),
        type: 'redrive_probe',
        stream: 'dashboard-probe',
        version: 1,
        position: 1,
        occurred_at: new Date().toISOString(),
        correlation_id: null,
        causation_id: null,
        schema: 1,
        data: { probe: true },
      });
      await jetstream(nats).publish(prefix.subject(`dlq.dashboard-probe.${originalSubject}`), probe, {
        headers,
      });

      const row = page.getByTestId('dead-letters').locator('tr', { hasText: 'dashboard-probe' });
      await row.getByText('probe failure for the dashboard test').waitFor({ timeout: LIVE_TIMEOUT_MS });
      await row.getByRole('button', { name: 'Re-drive' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: 're-driven to faucet.events.redrive_probe' })
        .waitFor();
      await page.getByTestId('dead-letters-empty').waitFor();

      const manager = await jetstreamManager(nats);
      const faucetStream = await manager.streams.info(prefix.streamName('FAUCET_EVENTS'));
      const republished = await manager.streams.getMessage(prefix.streamName('FAUCET_EVENTS'), {
        seq: faucetStream.state.last_seq,
      });
      expect(republished?.subject).toBe(originalSubject);
      expect(republished?.string()).toBe(probe);
      const dlq = await manager.streams.info(prefix.streamName(deadLetterStream.name));
      expect(dlq.state.messages).toBe(0);
    } finally {
      await nats.close();
    }
  }, 60_000);

  it('admin read routes refuse a wrong key with a code; a missing dead letter is 404', async () => {
    for (const route of [
      '/admin/accounts',
      '/admin/streams',
      '/admin/dead-letters',
      `/admin/escrow/${lifecycleEscrowId}`,
    ]) {
      const refused = await api.get(route, 'wrong-admin-key-000000000000');
      expect([route, refused.status, refused.body.error]).toEqual([route, 401, 'unauthorized']);
    }
    const missing = await api.post('/admin/dead-letters/999999/redrive', {}, ADMIN_API_KEY);
    expect([missing.status, missing.body.error]).toEqual([404, 'not_found']);
    const accounts = await api.get<{ books_sum_micros: string; accounts: Array<{ account: string }> }>(
      '/admin/accounts',
      ADMIN_API_KEY,
    );
    expect(accounts.body.books_sum_micros).toBe('0');

    // The OpenAPI examples of the routes the page reads name only fields the live answers have.
    const document = (
      await api.get<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(
        '/openapi.json',
      )
    ).body;
    const example = (route: string) =>
      (
        Object.values(document.paths[route]!.get!.responses)[0] as {
          content: Record<string, { example: unknown }>;
        }
      ).content['application/json']!.example;
    const creator = (
      await api.get<{ creator_id: string }>(`/admin/escrow/${lifecycleEscrowId}`, ADMIN_API_KEY)
    ).body.creator_id;
    for (const [route, live] of [
      ['/escrow/stats', '/escrow/stats'],
      ['/admin/accounts', '/admin/accounts'],
      ['/admin/deadlines', '/admin/deadlines'],
      ['/admin/streams', '/admin/streams'],
      ['/admin/ledger/check', '/admin/ledger/check'],
      ['/admin/verify/last', '/admin/verify/last'],
      ['/admin/escrow/{id}', `/admin/escrow/${lifecycleEscrowId}`],
      ['/admin/agents/{id}', `/admin/agents/${creator}`],
    ] as const) {
      const answer = await api.get(live, ADMIN_API_KEY);
      expect([route, answer.status, missingKeys(example(route), answer.body)]).toEqual([route, 200, []]);
    }
  });
});
