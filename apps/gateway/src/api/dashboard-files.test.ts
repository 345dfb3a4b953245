import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { EventEnvelope } from '@pf/contracts';
import {
  ASSET_CACHE_CONTROL,
  assetContentType,
  DashboardFiles,
  defaultDashboardDir,
} from './dashboard-files.js';
import { publicEvent } from './public-events.controller.js';

describe('dashboard files: only index.html and flat hashed assets', () => {
  let dir: string;
  let outside: string;

  beforeAll(async () => {
    outside = await mkdtemp(path.join(os.tmpdir(), 'dashboard-'));
    dir = path.join(outside, 'dashboard');
    await mkdir(path.join(dir, 'assets'), { recursive: true });
    await writeFile(path.join(dir, 'index.html'), '<!doctype html>');
    await writeFile(path.join(dir, 'assets', 'index-Ab12_-x.js'), 'export {}');
    await writeFile(path.join(dir, 'assets', '.env'), 'SECRET=1');
    await writeFile(path.join(outside, 'secret.js'), 'nope');
  });
  afterAll(() => rm(outside, { recursive: true, force: true }));

  it('serves a hashed asset with its type and a year of caching', async () => {
    const file = await new DashboardFiles(dir).asset('index-Ab12_-x.js');
    expect(file).toMatchObject({
      contentType: 'text/javascript; charset=utf-8',
      cacheControl: ASSET_CACHE_CONTROL,
    });
    expect(file?.body.toString()).toBe('export {}');
  });

  it.each([
    '../secret.js',
    '..%2Fsecret.js',
    '..\\secret.js',
    '/etc/passwd',
    '.env',
    '..',
    'a/../../secret.js',
    'index.html',
    'index-Ab12_-x.js\u0000.css',
    'missing.js',
    'x.exe',
  ])('refuses %j', async (name) => {
    expect(await new DashboardFiles(dir).asset(name)).toBeNull();
  });

  it('knows only the types Vite emits', () => {
    expect(assetContentType('a.css')).toBe('text/css; charset=utf-8');
    expect(assetContentType('a.html')).toBeUndefined();
    expect(assetContentType('a.map')).toBeUndefined();
  });

  it('finds dist/dashboard from the compiled gateway and from the sources', () => {
    expect(defaultDashboardDir('file:///app/dist/apps/gateway/src/api/dashboard-files.js')).toBe(
      '/app/dist/dashboard',
    );
    expect(defaultDashboardDir('file:///repo/apps/gateway/src/api/dashboard-files.ts')).toBe(
      '/repo/dist/dashboard',
    );
  });
});

describe('public events: only what is public anyway', () => {
  const envelope = (type: string, stream: string, data: Record<string, unknown>): EventEnvelope =>
    ({
      id: 'e1',
      type,
      stream,
      version: 1,
      position: 1,
      occurred_at: '2025-01-01T00:00:00.000Z',
      correlation_id: null,
      causation_id: null,
      schema: 1,
      data,
    }) as EventEnvelope;

  it('keeps the escrow id, status and exact amounts; drops parties and texts', () => {
    const released = publicEvent(
      envelope('released', 'escrow-esc_0123456789abcdef', {
        escrowId: 'esc_0123456789abcdef',
        by: 'ag_000000000001',
        trigger: 'creator',
        amountMicros: '5000000',
        payout: { counterpartyMicros: '4950000', commissionMicros: '50000', referrerId: 'ag_000000000002' },
      }),
    );
    expect(released.data).toEqual({
      escrow_id: 'esc_0123456789abcdef',
      status: 'released',
      amount_micros: '5000000',
      commission_micros: '50000',
    });
    const completed = publicEvent(
      envelope('completed', 'escrow-esc_0123456789abcdef', {
        escrowId: 'esc_0123456789abcdef',
        by: 'ag_000000000001',
        resultSummary: 'private work',
      }),
    );
    expect(JSON.stringify(completed)).not.toMatch(/ag_|private/);
  });

  it('keeps only the job id of a job event', () => {
    const bid = publicEvent(
      envelope('bid_placed', 'job-job_0123456789abcdef', {
        jobId: 'job_0123456789abcdef',
        workerId: 'ag_000000000001',
        priceMicros: '2500000',
        note: 'secret note',
      }),
    );
    expect(bid.data).toEqual({ job_id: 'job_0123456789abcdef' });
  });
});
