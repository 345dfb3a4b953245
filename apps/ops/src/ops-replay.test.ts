import { casinoCommands, type RegisterReply, newApiKey } from '@pf/contracts';
import { ServiceTestbed, sleep, usdMicros } from '@pf/testing';
import { runOps } from './testing.js';

const usd = usdMicros;

/**
 * `ops replay` and `ops verify` against a real casino (child process) after a scripted workload
 * over NATS, with the CLI run as operators run it (a child process from dist/).
 */
describe('ops replay and verify (casino, real Postgres and NATS)', () => {
  let testbed: ServiceTestbed;
  const env = () => ({
    DATABASE_URL: testbed.env.DATABASE_URL!,
    NATS_URL: testbed.env.NATS_URL!,
    NATS_PREFIX: testbed.prefix,
  });
  const sql = { query: (text: string, values?: unknown[]) => testbed.sql.query(text, values) };

  const command = <T>(subject: string, payload: unknown) => testbed.request<T>(subject, payload);
  const register = () =>
    command<RegisterReply>(casinoCommands.register, { apiKeySha256: newApiKey().apiKeySha256 });
  const credit = (agentId: string, amount: number, reference: string) =>
    command(casinoCommands.credit, { agentId, amountMicros: usd(amount), reference });
  const transfer = (transferId: string, from: string, to: string, amount: number) =>
    command(casinoCommands.transfer, {
      transferId,
      from,
      to,
      amountMicros: usd(amount),
      reason: 'payment',
      service: 'casino',
    });
  const hold = (holdId: string, from: string, amount: number) =>
    command(casinoCommands.hold, {
      holdId,
      from,
      amountMicros: usd(amount),
      reason: 'escrow',
      service: 'escrow',
    });

  /** Balances as the live projection shows them now. */
  async function balances(table = 'accounts'): Promise<Record<string, string>> {
    const { rows } = await sql.query(
      `SELECT account_id, available_micros::text || '/' || held_micros::text AS balance FROM casino.${table} ORDER BY account_id`,
    );
    return Object.fromEntries(
      rows.map((row: { account_id: string; balance: string }) => [row.account_id, row.balance]),
    );
  }

  /** Rows of a live table missing from its replay or the other way round (identity ids left out). */
  async function differingRows(table: string, replayTable: string, columns: string): Promise<number> {
    const { rows } = await sql.query(
      `SELECT count(*)::int AS n FROM ((SELECT ${columns} FROM casino.${table} EXCEPT ALL SELECT ${columns} FROM casino.${replayTable})
       UNION ALL (SELECT ${columns} FROM casino.${replayTable} EXCEPT ALL SELECT ${columns} FROM casino.${table})) AS d`,
    );
    return rows[0].n;
  }

  const ENTRY_COLUMNS =
    'position, account_id, operation_id, type, amount_micros, held_delta_micros, balance_after_micros, reason, service, counterparty, at';
  async function expectReplayEqualsLive(suffix: string): Promise<void> {
    expect(await differingRows('agents', `agents${suffix}`, '*')).toBe(0);
    expect(await differingRows('accounts', `accounts${suffix}`, '*')).toBe(0);
    expect(await differingRows('ledger_entries', `ledger_entries${suffix}`, ENTRY_COLUMNS)).toBe(0);
  }

  const headPosition = async () =>
    Number((await sql.query('SELECT max(global_position)::text AS p FROM casino.events')).rows[0].p);

  let agents: RegisterReply[] = [];
  let midpoint: { position: number; time: string; balances: Record<string, string> };

  beforeAll(async () => {
    testbed = await ServiceTestbed.start('opsreplay', ['casino'], { DB_POOL_MAX: '8' });

    // Phase one: agents, deposits, transfers, a posted, a voided and a refused hold. Text that
    // COPY must escape (tab, newline, carriage return, backslash) goes through a name and a reason.
    agents = await Promise.all(Array.from({ length: 5 }, () => register()));
    agents.push(
      await command<RegisterReply>(casinoCommands.register, {
        apiKeySha256: newApiKey().apiKeySha256,
        agentName: 'tab\there\nnew line\\back\\\\slash\r\\N',
      }),
    );
    await Promise.all(
      agents.map((agent, index) => credit(agent.agentId, 100 + index, `dep-${agent.agentId}`)),
    );
    const [a, b, c, d] = agents as [RegisterReply, RegisterReply, RegisterReply, RegisterReply];
    await transfer('t-1', a.agentId, b.agentId, 12.5);
    await command(casinoCommands.transfer, {
      transferId: 't-odd',
      from: b.agentId,
      to: c.agentId,
      amountMicros: usd(0.5),
      reason: 'x\ty\nz\\N\\',
      service: 'casino',
    });
    await expect(hold('h-refused', a.agentId, 1_000)).rejects.toMatchObject({ code: 'insufficient_balance' });
    await hold('h-1', c.agentId, 40);
    await command(casinoCommands.post, {
      holdId: 'h-1',
      splits: [
        { to: d.agentId, amountMicros: usd(39.6), reason: 'payout' },
        { to: 'house_revenue', amountMicros: usd(0.34), reason: 'commission' },
        { to: a.agentId, amountMicros: usd(0.06), reason: 'referral' },
      ],
      service: 'escrow',
    });
    await hold('h-2', d.agentId, 5);
    await command(casinoCommands.void, { holdId: 'h-2', service: 'escrow' });

    // The moment "what was every balance then?" asks about: no event is recorded within ±50 ms of it.
    await sleep(50);
    midpoint = { position: await headPosition(), time: new Date().toISOString(), balances: await balances() };
    await sleep(50);

    // Phase two: concurrent transfers, another agent, a hold left open.
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        transfer(
          `t-2-${index}`,
          agents[index % 6]!.agentId,
          agents[(index + 1) % 6]!.agentId,
          1 + index / 10,
        ),
      ),
    );
    agents.push(await register());
    await credit(agents[6]!.agentId, 7, 'dep-late');
    await hold('h-3', b.agentId, 3);
  }, 60_000);

  afterAll(async () => {
    await testbed?.close();
  });

  it('replays into shadow tables that equal the live projection, with progress on stderr', async () => {
    const run = await runOps(['replay', 'casino'], env());
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/casino: replayed \d+ events up to position \d+ into casino\.agents_shadow/);
    expect(run.stderr).toMatch(/casino replay: \d+\/\d+ events \(100%\)/);
    await expectReplayEqualsLive('_shadow');
  });

  it('point-in-time replay gives the balances of that moment, by position and by time', async () => {
    const byPosition = await runOps(
      ['replay', 'casino', '--to-position', String(midpoint.position), '--into', 'past', '--json'],
      env(),
    );
    expect(byPosition.code).toBe(0);
    expect(JSON.parse(byPosition.stdout.trim())).toMatchObject({
      type: 'result',
      goalPosition: midpoint.position,
      tables: expect.arrayContaining(['casino.accounts_past']),
    });
    expect(await balances('accounts_past')).toEqual(midpoint.balances);

    const byTime = await runOps(['replay', 'all', '--to-time', midpoint.time, '--into', 'noon'], env());
    expect(byTime.code).toBe(0);
    expect(await balances('accounts_noon')).toEqual(midpoint.balances);
    expect(await balances('accounts_noon')).not.toEqual(await balances());
  });

  it('verify passes on a healthy system and reports a corrupted projection row with its ids (exit 1)', async () => {
    const healthy = await runOps(['verify', 'casino'], env());
    expect(healthy.stderr).not.toContain('VIOLATION');
    expect(healthy.stdout).toContain('verify: ok, no violations');
    expect(healthy.code).toBe(0);

    const victim = agents[2]!.agentId;
    await sql.query(
      `UPDATE casino.accounts SET available_micros = available_micros + 1 WHERE account_id = $1`,
      [victim],
    );
    try {
      const broken = await runOps(['verify', 'casino'], env());
      expect(broken.code).toBe(1);
      expect(broken.stdout).toMatch(new RegExp(`VIOLATION casino projection_mismatch account=${victim}`));
      expect(broken.stdout).toMatch(
        new RegExp(`VIOLATION casino projection_differs_from_replay table=accounts account_id=${victim}`),
      );
      expect(broken.stdout).toMatch(/verify: \d+ violation\(s\)/);
    } finally {
      await sql.query(
        `UPDATE casino.accounts SET available_micros = available_micros - 1 WHERE account_id = $1`,
        [victim],
      );
    }
  });

  it('swaps the replay in atomically while casino keeps taking commands', async () => {
    const before = await balances();
    const [payer, payee] = [agents[0]!.agentId, agents[1]!.agentId];
    let stop = false;
    let moved = 0;
    const load = (async () => {
      while (!stop) {
        await transfer(`swap-${moved}`, payer, payee, 0.01);
        moved += 1;
      }
    })();
    await sleep(100);
    const run = await runOps(['replay', 'casino', '--swap'], env());
    await sleep(100);
    stop = true;
    await load;
    expect(run.stderr).not.toContain('ops:');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('swapped them in as casino.agents, casino.accounts, casino.ledger_entries');
    expect(moved).toBeGreaterThan(0);

    // Every transfer is in the new live tables exactly once, and the books still check out.
    const after = await balances();
    expect(BigInt(after[payer]!.split('/')[0]!)).toBe(
      BigInt(before[payer]!.split('/')[0]!) - BigInt(moved) * 10_000n,
    );
    const { rows } = await sql.query(
      `SELECT to_regclass('casino.accounts_old') IS NOT NULL AS kept, to_regclass('casino.accounts_shadow') IS NULL AS moved`,
    );
    expect(rows[0]).toEqual({ kept: true, moved: true });
    const names = await sql.query(
      `SELECT indexname FROM pg_indexes WHERE schemaname = 'casino' AND tablename = 'accounts'`,
    );
    expect(names.rows.map((row: { indexname: string }) => row.indexname)).toEqual(['accounts_pkey']);
    const verified = await runOps(['verify', 'casino'], env());
    expect(verified.stdout).toContain('verify: ok, no violations');
    expect(verified.code).toBe(0);
  }, 60_000);

  it('refuses bad input with one line and exit code 2, changing nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['replay', 'bank'], /unknown service "bank"/],
      [['replay', 'casino', '--to-position', '12x', '--into', 'bad'], /--to-position must be a whole number/],
      [
        ['replay', 'casino', '--to-time', '2025-13-01T00:00Z', '--into', 'bad'],
        /--to-time is not a valid time/,
      ],
      [
        ['replay', 'casino', '--to-time', '2025-01-01T00:00', '--into', 'bad'],
        /--to-time must be an ISO 8601 time with a zone/,
      ],
      [['replay', 'casino', '--swap', '--to-position', '3'], /--swap replaces the live projection/],
      [['replay', 'all', '--to-position', '3'], /name the service/],
      [['replay', 'casino', '--into', 'live'], /--into must be a lowercase word/],
      [['verify', 'casino', '--grace', 'soon'], /--grace must be a duration/],
      [['frobnicate'], /unknown command/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runOps(args, env())));
    runs.forEach((run, index) => {
      expect({ args: cases[index]![0], code: run.code, lines: run.stderr.trim().split('\n').length }).toEqual(
        { args: cases[index]![0], code: 2, lines: 1 },
      );
      expect(run.stderr).toMatch(cases[index]![1]);
    });
    const { rows } = await sql.query(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'casino' AND tablename LIKE '%_bad'`,
    );
    expect(rows[0].n).toBe(0);
  });

  it('reports an unreachable Postgres with one line and exit code 2', async () => {
    const run = await runOps(['replay', 'casino'], {
      ...env(),
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
    });
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toMatch(
      /^ops: casino: cannot reach Postgres at postgres:\/\/postgres@127\.0\.0\.1:1\/nowhere: .*ECONNREFUSED/,
    );
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });
});
