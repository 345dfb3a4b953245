import {
  apiKeySha256,
  casinoCommands,
  newApiKey,
  type AccountView,
  type LedgerCheckReport,
  type OperationReply,
  type RegisterReply,
} from '@pf/contracts';
import { errorCodeOf as failure, ServiceTestbed, spawnService, usdMicros as usd } from '@pf/testing';

/** Casino as it runs in production (a child process), driven by its NATS commands. */
describe('casino ledger over NATS (real Postgres and NATS)', () => {
  let testbed: ServiceTestbed;

  const command = <T>(subject: string, payload: unknown) => testbed.request<T>(subject, payload);
  const sql = { query: (text: string, values?: unknown[]) => testbed.sql.query(text, values) };
  /** Registers as the gateway does: the key is drawn here and casino only learns its hash. */
  const register = async () => {
    const { apiKey, apiKeySha256: keySha256 } = newApiKey();
    return {
      ...(await command<RegisterReply>(casinoCommands.register, { apiKeySha256: keySha256 })),
      apiKey,
    };
  };
  const account = (agentId: string) => command<AccountView>(casinoCommands.getAccount, { agentId });
  const credit = (agentId: string, amount: number, reference = `ref-${agentId}-${amount}`) =>
    command(casinoCommands.credit, { agentId, amountMicros: usd(amount), reference });

  beforeAll(async () => {
    testbed = await ServiceTestbed.start('casino', ['casino'], { DB_POOL_MAX: '8' });
  }, 60_000);

  afterAll(async () => {
    await testbed?.close();
  });

  it('registers agents with unique ids and referral codes, and authenticates by the key hash', async () => {
    const [first, second] = await Promise.all([register(), register()]);
    expect(first!.agentId).toMatch(/^ag_[0-9a-f]{12}$/);
    expect(first!.referralCode).toMatch(/^ref_[0-9a-f]{8}$/);
    expect(second!.agentId).not.toBe(first!.agentId);
    await expect(
      command(casinoCommands.authenticate, { apiKeySha256: apiKeySha256(first!.apiKey) }),
    ).resolves.toEqual({ agentId: first!.agentId });
    expect(
      await failure(
        command(casinoCommands.authenticate, { apiKeySha256: apiKeySha256(`sk_live_${'0'.repeat(48)}`) }),
      ),
    ).toBe('unauthorized');

    const referred = await command<RegisterReply>(casinoCommands.register, {
      apiKeySha256: newApiKey().apiKeySha256,
      referralCode: first!.referralCode,
      agentName: 'worker',
    });
    expect(referred.referredBy).toBe(first!.agentId);
    const ignored = await command<RegisterReply>(casinoCommands.register, {
      apiKeySha256: newApiKey().apiKeySha256,
      referralCode: 'ref_00000000',
    });
    expect(ignored.referredBy).toBeNull();
  });

  it('never receives the API key: the register reply and the authenticate command carry only its hash', async () => {
    const { apiKey, apiKeySha256: keySha256 } = newApiKey();
    const reply = await command<RegisterReply>(casinoCommands.register, { apiKeySha256: keySha256 });
    expect(JSON.stringify(reply)).not.toContain(apiKey.slice(8));
    expect(await failure(command(casinoCommands.register, { apiKey }))).toBe('invalid_request');
    expect(await failure(command(casinoCommands.authenticate, { apiKey }))).toBe('invalid_request');
  });

  it('stores only a hash of the API key, never the key', async () => {
    const agent = await register();
    const { rows } = await sql.query(
      `SELECT count(*)::int AS n FROM casino.events WHERE data::text LIKE $1`,
      [`%${agent.apiKey.slice(8)}%`],
    );
    expect(rows[0].n).toBe(0);
    const agents = await sql.query(
      `SELECT encode(api_key_hash, 'hex') AS hash FROM casino.agents WHERE agent_id = $1`,
      [agent.agentId],
    );
    expect(agents.rows[0].hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('credits from world idempotently on the reference', async () => {
    const agent = await register();
    await credit(agent.agentId, 10, 'dep-1');
    await credit(agent.agentId, 10, 'dep-1');
    expect((await account(agent.agentId)).availableMicros).toBe(usd(10));
    expect(await failure(credit(agent.agentId, 11, 'dep-1'))).toBe('reference_reused');
    expect(await failure(credit('ag_000000000000', 1, 'dep-x'))).toBe('agent_not_found');
  });

  it('holds, posts to splits and voids, with balances visible as soon as the command replies', async () => {
    const [creator, worker, referrer] = await Promise.all([register(), register(), register()]);
    await credit(creator.agentId, 10);
    const hold = await command<OperationReply>(casinoCommands.hold, {
      holdId: 'esc_hold_1',
      from: creator.agentId,
      amountMicros: usd(5),
    });
    expect(hold).toMatchObject({ status: 'held', amountMicros: usd(5) });
    expect(await account(creator.agentId)).toMatchObject({ availableMicros: usd(5), heldMicros: usd(5) });

    const splits = [
      { to: worker.agentId, amountMicros: '4950000', reason: 'payout' },
      { to: 'house_revenue', amountMicros: '42500', reason: 'commission' },
      { to: referrer.agentId, amountMicros: '7500', reason: 'referral' },
    ];
    const posted = await command<OperationReply>(casinoCommands.post, { holdId: 'esc_hold_1', splits });
    expect(posted.status).toBe('posted');
    const again = await command<OperationReply>(casinoCommands.post, {
      holdId: 'esc_hold_1',
      splits: [{ to: worker.agentId, amountMicros: usd(5) }],
    });
    expect(again).toEqual(posted);
    expect(await failure(command(casinoCommands.void, { holdId: 'esc_hold_1' }))).toBe('hold_already_posted');

    expect(await account(creator.agentId)).toMatchObject({
      availableMicros: usd(5),
      heldMicros: '0',
      lifetime: expect.objectContaining({ escrowedMicros: usd(5), feesMicros: '50000' }),
    });
    expect(await account(worker.agentId)).toMatchObject({
      availableMicros: '4950000',
      lifetime: expect.objectContaining({ earnedMicros: '4950000' }),
    });
    const stats = await command<{ commissionEarnedMicros: string }>(casinoCommands.referralStats, {
      agentId: referrer.agentId,
    });
    expect(stats.commissionEarnedMicros).toBe('7500');

    await command(casinoCommands.hold, { holdId: 'esc_hold_2', from: creator.agentId, amountMicros: usd(2) });
    const voided = await command<OperationReply>(casinoCommands.void, { holdId: 'esc_hold_2' });
    expect(voided.status).toBe('voided');
    expect(
      await failure(
        command(casinoCommands.post, {
          holdId: 'esc_hold_2',
          splits: [{ to: worker.agentId, amountMicros: usd(2) }],
        }),
      ),
    ).toBe('hold_already_voided');
    expect(await account(creator.agentId)).toMatchObject({ availableMicros: usd(5), heldMicros: '0' });
  });

  it.each([
    [{ holdId: 'h-bad', from: 'ag_000000000001', amountMicros: '1000000' }, 'account_not_found'],
    [{ holdId: 'h-bad', from: 'not-an-agent', amountMicros: '1000000' }, 'invalid_request'],
    [{ holdId: 'h-bad', amountMicros: '-5' }, 'invalid_request'],
    [{ holdId: 'h-bad', amountMicros: '1.5' }, 'invalid_request'],
    [{ holdId: 'h-bad', amountMicros: 5 }, 'invalid_request'],
    [{ holdId: 'h bad', amountMicros: '5' }, 'invalid_request'],
  ])('refuses a bad hold %j with %s and writes nothing', async (payload, code) => {
    const agent = await register();
    await credit(agent.agentId, 1);
    const before = await sql.query('SELECT count(*)::int AS n FROM casino.events');
    expect(await failure(command(casinoCommands.hold, { from: agent.agentId, ...payload }))).toBe(code);
    const after = await sql.query('SELECT count(*)::int AS n FROM casino.events');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('a refused hold stays refused: the same hold id arriving late, after a deposit, locks nothing', async () => {
    const agent = await register();
    await credit(agent.agentId, 1);
    const hold = { holdId: `late-${agent.agentId}`, from: agent.agentId, amountMicros: usd(5) };
    expect(await failure(command(casinoCommands.hold, hold))).toBe('insufficient_balance');
    await credit(agent.agentId, 10, `late-deposit-${agent.agentId}`);
    expect(await failure(command(casinoCommands.hold, hold))).toBe('insufficient_balance');
    expect(await account(agent.agentId)).toMatchObject({ availableMicros: usd(11), heldMicros: '0' });
    await expect(command(casinoCommands.void, { holdId: hold.holdId })).resolves.toMatchObject({
      status: 'rejected',
    });
    await expect(
      command(casinoCommands.hold, { ...hold, holdId: `fresh-${agent.agentId}` }),
    ).resolves.toMatchObject({ status: 'held' });
  });

  it('race: 100 concurrent holds of $1 on $10 give exactly 10 holds and never a negative balance', async () => {
    const agent = await register();
    await credit(agent.agentId, 10);
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, index) =>
        command(casinoCommands.hold, {
          holdId: `race-${agent.agentId}-${index}`,
          from: agent.agentId,
          amountMicros: usd(1),
        }),
      ),
    );
    const succeeded = results.filter((result) => result.status === 'fulfilled');
    const codes = results.flatMap((result) =>
      result.status === 'rejected' ? [(result.reason as { code: string }).code] : [],
    );
    expect(succeeded).toHaveLength(10);
    expect(new Set(codes)).toEqual(new Set(['insufficient_balance']));
    expect(await account(agent.agentId)).toMatchObject({ availableMicros: '0', heldMicros: usd(10) });
    const check = await command<LedgerCheckReport>(casinoCommands.checkLedger, {});
    expect(check.violations).toEqual([]);
  });

  it('race: 50 concurrent identical transfers with one id move the money once', async () => {
    const [payer, payee] = await Promise.all([register(), register()]);
    await credit(payer.agentId, 10);
    const transfer = {
      transferId: `once-${payer.agentId}`,
      from: payer.agentId,
      to: payee.agentId,
      amountMicros: usd(3),
    };
    const replies = await Promise.all(
      Array.from({ length: 50 }, () => command<OperationReply>(casinoCommands.transfer, transfer)),
    );
    expect(new Set(replies.map((reply) => reply.position)).size).toBe(1);
    expect((await account(payer.agentId)).availableMicros).toBe(usd(7));
    expect((await account(payee.agentId)).availableMicros).toBe(usd(3));
    const events = await sql.query(`SELECT count(*)::int AS n FROM casino.events WHERE stream_id = $1`, [
      `op-${transfer.transferId}`,
    ]);
    expect(events.rows[0].n).toBe(1);
  });

  it('race: concurrent post and void of one hold: exactly one wins, the other is refused', async () => {
    const [creator, worker] = await Promise.all([register(), register()]);
    await credit(creator.agentId, 5);
    for (let round = 0; round < 10; round += 1) {
      const holdId = `pv-${creator.agentId}-${round}`;
      await command(casinoCommands.hold, { holdId, from: creator.agentId, amountMicros: usd(0.5) });
      const [post, cancel] = await Promise.allSettled([
        command(casinoCommands.post, { holdId, splits: [{ to: worker.agentId, amountMicros: usd(0.5) }] }),
        command(casinoCommands.void, { holdId }),
      ]);
      expect([post.status, cancel.status].filter((status) => status === 'fulfilled')).toHaveLength(1);
    }
    const creatorAccount = await account(creator.agentId);
    const workerAccount = await account(worker.agentId);
    expect(BigInt(creatorAccount.availableMicros) + BigInt(workerAccount.availableMicros)).toBe(
      BigInt(usd(5)),
    );
    expect(creatorAccount.heldMicros).toBe('0');
  });

  it('partial posts: parts of a hold pay out exactly once under concurrent retries; the last part settles it', async () => {
    const [creator, worker] = await Promise.all([register(), register()]);
    await credit(creator.agentId, 10);
    const holdId = `pp-${creator.agentId}`;
    await command(casinoCommands.hold, { holdId, from: creator.agentId, amountMicros: usd(10) });
    const part = (partId: string, amount: number, extra: Record<string, unknown> = {}) =>
      command<OperationReply>(casinoCommands.post, {
        holdId,
        partId,
        splits: [
          { to: worker.agentId, amountMicros: usd(amount * 0.99), reason: 'payout' },
          { to: 'house_revenue', amountMicros: usd(amount * 0.01), reason: 'commission' },
        ],
        ...extra,
      });
    // Twenty concurrent retries of one part: paid once, every caller told the same.
    const replies = await Promise.all(Array.from({ length: 20 }, () => part('m0', 4)));
    const { position: _position, ...first } = replies[0]!;
    for (const reply of replies)
      expect({ ...reply, position: _position }).toEqual({ ...first, position: _position });
    expect(first).toMatchObject({
      status: 'held',
      amountMicros: usd(10),
      part: { partId: 'm0', amountMicros: usd(4), final: false, remainingMicros: usd(6) },
    });
    expect(await account(creator.agentId)).toMatchObject({ availableMicros: '0', heldMicros: usd(6) });
    expect(await account(worker.agentId)).toMatchObject({ availableMicros: usd(3.96) });
    // The same part id with another amount is refused, and changes nothing.
    expect(await failure(part('m0', 3))).toBe('part_id_reused');
    expect(await failure(part('m1', 6.000001))).toBe('invalid_splits');
    // The last part pays the rest and settles the hold; a retry of the first part still answers the same.
    const last = await part('m1', 6);
    expect(last).toMatchObject({ status: 'posted', part: { remainingMicros: '0' } });
    expect(await part('m0', 4)).toMatchObject({ status: 'held', part: first.part });
    expect(await failure(part('m2', 1))).toBe('hold_already_posted');
    expect(await failure(command(casinoCommands.void, { holdId }))).toBe('hold_already_posted');
    expect(await account(creator.agentId)).toMatchObject({
      availableMicros: '0',
      heldMicros: '0',
      lifetime: expect.objectContaining({ feesMicros: usd(0.1), earnedMicros: '0' }),
    });
    expect(await account(worker.agentId)).toMatchObject({
      availableMicros: usd(9.9),
      lifetime: expect.objectContaining({ earnedMicros: usd(9.9) }),
    });
  });

  it('partial posts: a final part gives the rest back; an unknown split reason or final without a part is refused', async () => {
    const [creator, worker] = await Promise.all([register(), register()]);
    await credit(creator.agentId, 5);
    const holdId = `pf-${creator.agentId}`;
    await command(casinoCommands.hold, { holdId, from: creator.agentId, amountMicros: usd(5) });
    const before = await sql.query('SELECT count(*)::int AS n FROM casino.events');
    const split = { to: worker.agentId, amountMicros: usd(1) };
    expect(
      await failure(
        command(casinoCommands.post, { holdId, partId: 'x', splits: [{ ...split, reason: 'bonus' }] }),
      ),
    ).toBe('invalid_request');
    expect(await failure(command(casinoCommands.post, { holdId, final: true, splits: [split] }))).toBe(
      'invalid_request',
    );
    expect((await sql.query('SELECT count(*)::int AS n FROM casino.events')).rows[0].n).toBe(
      before.rows[0].n,
    );
    const final = await command<OperationReply>(casinoCommands.post, {
      holdId,
      partId: 'only',
      final: true,
      splits: [split],
    });
    expect(final).toMatchObject({
      status: 'posted',
      part: { amountMicros: usd(1), final: true, remainingMicros: '0' },
    });
    expect(await account(creator.agentId)).toMatchObject({ availableMicros: usd(4), heldMicros: '0' });
    expect(await account(worker.agentId)).toMatchObject({ availableMicros: usd(1) });
  });

  it('race: parts of one hold against its void: each part is paid or refused, and nothing is lost', async () => {
    const [creator, worker] = await Promise.all([register(), register()]);
    await credit(creator.agentId, 30);
    let partsPaid = 0;
    for (let round = 0; round < 5; round += 1) {
      // $6 for five $1 parts: whatever the order, the void has something left to give back.
      const holdId = `pr-${creator.agentId}-${round}`;
      await command(casinoCommands.hold, { holdId, from: creator.agentId, amountMicros: usd(6) });
      const part = (index: number) =>
        command<OperationReply>(casinoCommands.post, {
          holdId,
          partId: `p${index}`,
          splits: [{ to: worker.agentId, amountMicros: usd(1), reason: 'payout' }],
        });
      // Each part sent twice (a retry racing its original), all against one void.
      const outcomes = await Promise.allSettled([
        ...[0, 1, 2, 3, 4].flatMap((index) => [part(index), part(index)]),
        command<OperationReply>(casinoCommands.void, { holdId }),
      ]);
      const voidOutcome = outcomes.at(-1)!;
      expect(voidOutcome.status).toBe('fulfilled');
      for (let index = 0; index < 5; index += 1) {
        const [original, retry] = [outcomes[index * 2]!, outcomes[index * 2 + 1]!];
        expect(original.status).toBe(retry.status);
        if (original.status === 'fulfilled') partsPaid += 1;
        else expect((original.reason as { code?: string }).code).toBe('hold_already_voided');
      }
    }
    const creatorAccount = await account(creator.agentId);
    const workerAccount = await account(worker.agentId);
    expect(workerAccount.availableMicros).toBe(usd(partsPaid));
    expect(BigInt(creatorAccount.availableMicros) + BigInt(workerAccount.availableMicros)).toBe(
      BigInt(usd(30)),
    );
    expect(creatorAccount.heldMicros).toBe('0');
  });

  it('two replicas, each deciding on its own cache: a stale guess is caught under the lock and decided again on the log', async () => {
    // Commands are shared at random between the replicas (one queue group), so each one's
    // cache keeps missing the other's writes. A batch decided on a stale balance must never
    // go through: the last hold that fits succeeds, the next one is refused as insufficient
    // (not failed by the balance row's CHECK), and the books stay exact.
    const second = await spawnService('casino', { env: { ...testbed.env } });
    try {
      await second.waitUntilReady();
      const worker = await register();
      for (let round = 0; round < 6; round += 1) {
        const agent = await register();
        await credit(agent.agentId, 2);
        for (let index = 0; index < 8; index += 1) {
          await expect(
            command(casinoCommands.hold, {
              holdId: `r2-${agent.agentId}-${index}`,
              from: agent.agentId,
              amountMicros: usd(0.25),
            }),
          ).resolves.toMatchObject({ status: 'held' });
        }
        expect(
          await failure(
            command(casinoCommands.hold, {
              holdId: `r2-${agent.agentId}-over`,
              from: agent.agentId,
              amountMicros: usd(0.25),
            }),
          ),
        ).toBe('insufficient_balance');
        for (let index = 0; index < 8; index += 1) {
          const holdId = `r2-${agent.agentId}-${index}`;
          if (index % 2 === 0)
            await command(casinoCommands.post, {
              holdId,
              splits: [{ to: worker.agentId, amountMicros: usd(0.25) }],
            });
          else await command(casinoCommands.void, { holdId });
        }
        expect(await account(agent.agentId)).toMatchObject({ availableMicros: usd(1), heldMicros: '0' });
        // Retries of settled operations, on whichever replica: the outcome, and nothing moves.
        await expect(
          command(casinoCommands.hold, {
            holdId: `r2-${agent.agentId}-0`,
            from: agent.agentId,
            amountMicros: usd(0.25),
          }),
        ).resolves.toMatchObject({ status: 'posted' });
        await expect(
          command(casinoCommands.void, { holdId: `r2-${agent.agentId}-1` }),
        ).resolves.toMatchObject({ status: 'voided' });
        expect(await account(agent.agentId)).toMatchObject({ availableMicros: usd(1), heldMicros: '0' });
      }
      expect((await account(worker.agentId)).availableMicros).toBe(usd(6));
      // And racing: 100 holds of $1 on $10 spread over both replicas.
      const racer = await register();
      await credit(racer.agentId, 10);
      const results = await Promise.allSettled(
        Array.from({ length: 100 }, (_, index) =>
          command(casinoCommands.hold, {
            holdId: `r2-race-${racer.agentId}-${index}`,
            from: racer.agentId,
            amountMicros: usd(1),
          }),
        ),
      );
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(10);
      expect(
        new Set(
          results.flatMap((result) =>
            result.status === 'rejected' ? [(result.reason as { code: string }).code] : [],
          ),
        ),
      ).toEqual(new Set(['insufficient_balance']));
      expect(await account(racer.agentId)).toMatchObject({ availableMicros: '0', heldMicros: usd(10) });
      const check = await command<LedgerCheckReport>(casinoCommands.checkLedger, {});
      expect(check.violations).toEqual([]);
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('pages the ledger newest first with a cursor', async () => {
    const agent = await register();
    for (let index = 1; index <= 5; index += 1)
      await credit(agent.agentId, index, `page-${agent.agentId}-${index}`);
    const first = await command<{ entries: Array<{ amountMicros: string }>; nextCursor: string | null }>(
      casinoCommands.getLedger,
      { agentId: agent.agentId, limit: 3 },
    );
    expect(first.entries.map((entry) => entry.amountMicros)).toEqual([usd(5), usd(4), usd(3)]);
    const second = await command<{ entries: Array<{ amountMicros: string }>; nextCursor: string | null }>(
      casinoCommands.getLedger,
      { agentId: agent.agentId, limit: 3, cursor: first.nextCursor },
    );
    expect(second.entries.map((entry) => entry.amountMicros)).toEqual([usd(2), usd(1)]);
    expect(second.nextCursor).toBeNull();
  });

  it('ledger check passes on the books and reports a corrupted balance row', async () => {
    const healthy = await command<LedgerCheckReport>(casinoCommands.checkLedger, {});
    expect(healthy).toMatchObject({ ok: true, totalMicros: '0', violations: [] });
    const logged = await sql.query('SELECT count(*)::int AS n FROM casino.events');
    expect(healthy.eventsChecked).toBe(logged.rows[0].n);

    const agent = await register();
    await credit(agent.agentId, 1);
    await sql.query(
      `UPDATE casino.accounts SET available_micros = available_micros + 1 WHERE account_id = $1`,
      [agent.agentId],
    );
    const broken = await command<LedgerCheckReport>(casinoCommands.checkLedger, {});
    expect(broken.ok).toBe(false);
    expect(broken.violations).toContainEqual(
      expect.objectContaining({ kind: 'projection_mismatch', account: agent.agentId }),
    );
    await sql.query(
      `UPDATE casino.accounts SET available_micros = available_micros - 1 WHERE account_id = $1`,
      [agent.agentId],
    );
  });
});
