import {
  createTestDatabase,
  spawnService,
  startSystem,
  testNatsPrefix,
  testNatsUrl,
  waitFor,
  type TestDatabase,
  type TestSystem,
} from '@pf/testing';
import { ApiClient, type Agent } from './api-client.js';

const ADMIN_API_KEY = 'events-e2e-admin-key-0123456789';
const HEARTBEAT_MS = 300;
const PER_AGENT_MAX = 4;
/** API.md's promise: an event reaches the stream within 100 ms of the call that caused it. */
const DELIVERY_BUDGET_MS = 100;

interface StreamEvent {
  id: number;
  type: string;
  escrowId: string;
  receivedAtMs: number;
  /** The message as sent: the `event:` line and the JSON of `data:`. */
  event: string;
  body: { id: string; type: string; stream: string; version: number; data: Record<string, unknown> };
}

/** A minimal SSE reader over fetch: frames in order, their arrival times, and comment lines. */
class EventStreamReader {
  readonly events: StreamEvent[] = [];
  readonly comments: string[] = [];
  private readonly abort = new AbortController();
  private buffer = '';
  private done?: Promise<void>;

  /** `apiKey` goes in Authorization; `{ token }` in the URL, as a browser's EventSource sends it. */
  constructor(
    private readonly url: string,
    private readonly apiKey: string | { token: string },
    private readonly lastEventId?: number,
  ) {}

  async open(): Promise<this> {
    const headers: Record<string, string> =
      typeof this.apiKey === 'string' ? { authorization: `Bearer ${this.apiKey}` } : {};
    if (this.lastEventId !== undefined) headers['last-event-id'] = String(this.lastEventId);
    const query = typeof this.apiKey === 'string' ? '' : `?token=${this.apiKey.token}`;
    const response = await fetch(`${this.url}/escrow/events/stream${query}`, {
      headers,
      signal: this.abort.signal,
    });
    if (response.status !== 200) throw new Error(`stream: ${response.status} ${await response.text()}`);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = response.body!.getReader();
    this.done = this.read(reader);
    await waitFor('stream connected', async () => this.comments.includes('connected'), {
      timeoutMs: 5_000,
      intervalMs: 5,
    });
    return this;
  }

  close(): void {
    this.abort.abort();
  }

  ids(): number[] {
    return this.events.map((event) => event.id);
  }

  async waitForEvent(escrowId: string, type: string): Promise<StreamEvent> {
    const find = () => this.events.find((event) => event.escrowId === escrowId && event.type === type);
    await waitFor(`${type} on ${escrowId}`, async () => find() !== undefined, {
      timeoutMs: 5_000,
      intervalMs: 2,
    });
    return find()!;
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        this.buffer += decoder.decode(value, { stream: true });
        this.parseFrames();
      }
    } catch {
      // Aborted by close().
    }
  }

  private parseFrames(): void {
    let end = this.buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.parseFrame(frame);
      end = this.buffer.indexOf('\n\n');
    }
  }

  private parseFrame(frame: string): void {
    let id: number | undefined;
    let event = 'message';
    let data = '';
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else if (line.startsWith('id: ')) id = Number(line.slice(4));
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (id === undefined) return;
    const body = JSON.parse(data) as StreamEvent['body'];
    this.events.push({
      id,
      type: body.type,
      escrowId: body.data.escrow_id as string,
      receivedAtMs: performance.now(),
      event,
      body,
    });
  }
}

/** `GET /escrow/events/stream`: live, resumable, and private to the escrow's parties. */
describe('escrow events over Server-Sent Events', () => {
  let database: TestDatabase;
  let system: TestSystem;
  let api: ApiClient;
  let creator: Agent;
  let worker: Agent;
  let outsider: Agent;
  let outsiderPartner: Agent;
  const prefix = testNatsPrefix();
  const readers: EventStreamReader[] = [];
  const latenciesMs: number[] = [];
  /** Every id the worker's streams received, across the tests. */
  const workerIds = new Set<number>();
  let env: Record<string, string>;

  const stream = async (agent: Agent, lastEventId?: number) => {
    const reader = await new EventStreamReader(system.gatewayUrl, agent.apiKey, lastEventId).open();
    readers.push(reader);
    return reader;
  };

  /** Runs the HTTP call, then checks each reader got the event within the budget after it answered. */
  const expectDelivered = async (
    call: () => Promise<{ status: number; body: Record<string, unknown> }>,
    type: string,
    to: EventStreamReader[],
    escrowId?: string,
  ) => {
    const answer = await call();
    const answeredAtMs = performance.now();
    expect(answer.status).toBeLessThan(300);
    const id = escrowId ?? (answer.body.escrow_id as string);
    for (const reader of to) {
      const event = await reader.waitForEvent(id, type);
      latenciesMs.push(Math.max(0, event.receivedAtMs - answeredAtMs));
      expect(event.receivedAtMs - answeredAtMs).toBeLessThan(DELIVERY_BUDGET_MS);
    }
    return id;
  };

  const create = (by: Agent, counterparty: Agent) => () =>
    api.post(
      '/escrow/create',
      { amount_usd: 1, description: 'stream me', counterparty_agent_id: counterparty.agentId },
      by.apiKey,
    );

  beforeAll(async () => {
    database = await createTestDatabase('eventsstream');
    env = {
      DATABASE_URL: database.url,
      NATS_URL: testNatsUrl(),
      NATS_PREFIX: prefix,
      ADMIN_API_KEY,
      EVENT_STREAM_HEARTBEAT_MS: String(HEARTBEAT_MS),
      EVENT_STREAMS_PER_AGENT_MAX: String(PER_AGENT_MAX),
    };
    system = await startSystem(env, ['casino', 'escrow', 'gateway']);
    api = new ApiClient(system.gatewayUrl);
    [creator, worker, outsider, outsiderPartner] = await Promise.all([
      api.register(),
      api.register(),
      api.register(),
      api.register(),
    ]);
    await api.credit(ADMIN_API_KEY, creator.agentId, 20);
    await api.credit(ADMIN_API_KEY, outsider.agentId, 20);
  }, 60_000);

  afterAll(async () => {
    for (const reader of readers) reader.close();
    process.stdout.write(
      `event delivery after the HTTP answer: max ${Math.max(...latenciesMs).toFixed(1)} ms over ${latenciesMs.length} deliveries\n`,
    );
    await system?.stop(); // also deletes the run's streams
    await database?.drop();
  });

  it('delivers every event of a lifecycle to both parties within 100 ms, and nothing to others', async () => {
    const [creatorStream, workerStream, outsiderStream] = [
      await stream(creator),
      await stream(worker),
      await stream(outsider),
    ];
    const both = [creatorStream, workerStream];
    const escrowId = await expectDelivered(create(creator, worker), 'funded', both);
    await expectDelivered(
      () => api.post(`/escrow/complete/${escrowId}`, { result_summary: 'done' }, worker.apiKey),
      'completed',
      both,
      escrowId,
    );
    await expectDelivered(
      () => api.post(`/escrow/release/${escrowId}`, {}, creator.apiKey),
      'released',
      both,
      escrowId,
    );

    // The outsider's own escrow reaches it, so its stream works; the others' never do.
    const own = await expectDelivered(create(outsider, outsiderPartner), 'funded', [outsiderStream]);
    expect(outsiderStream.events.map((event) => event.escrowId)).toEqual([own]);
    expect(creatorStream.events.map((event) => event.type)).toEqual(['funded', 'completed', 'released']);
    expect(workerStream.ids()).toEqual(creatorStream.ids());
    expect(creatorStream.events.some((event) => event.escrowId === own)).toBe(false);
    workerStream.ids().forEach((id) => workerIds.add(id));
  });

  it('resumes from Last-Event-ID with no gap and no duplicate', async () => {
    const continuous = await stream(worker);
    const first = await stream(worker);
    const escrowId = await expectDelivered(create(creator, worker), 'funded', [continuous, first]);
    first.close();
    const lastSeen = first.ids().at(-1)!;

    // While the worker is away: completed and released.
    await api.post(`/escrow/complete/${escrowId}`, {}, worker.apiKey);
    await api.post(`/escrow/release/${escrowId}`, {}, creator.apiKey);
    await continuous.waitForEvent(escrowId, 'released');

    const resumed = await stream(worker, lastSeen);
    await resumed.waitForEvent(escrowId, 'released');
    // And live again after the catch-up: a new escrow the worker declines.
    const next = await expectDelivered(create(creator, worker), 'funded', [resumed, continuous]);
    await expectDelivered(
      () => api.post(`/escrow/decline/${next}`, {}, worker.apiKey),
      'declined',
      [resumed, continuous],
      next,
    );

    const joined = [...first.ids(), ...resumed.ids()];
    expect(new Set(joined).size).toBe(joined.length);
    expect(joined).toEqual(continuous.ids());
    expect(resumed.events.map((event) => event.type)).toEqual([
      'completed',
      'released',
      'funded',
      'declined',
    ]);
    continuous.ids().forEach((id) => workerIds.add(id));
  });

  it('resumes mid-escrow on a fresh gateway, finding the parties from the escrow service', async () => {
    // A new replica has seen no `opened` event: the escrows' parties must be asked for.
    const fresh = await spawnService('gateway', { env });
    try {
      await fresh.waitUntilReady();
      const [firstId, ...rest] = [...workerIds].sort((a, b) => a - b);
      const reader = await new EventStreamReader(fresh.url, worker.apiKey, firstId).open();
      readers.push(reader);
      await waitFor('the catch-up', async () => reader.ids().length >= rest.length, {
        timeoutMs: 5_000,
        intervalMs: 10,
      });
      expect(reader.ids()).toEqual(rest);
      const outsiderReader = await new EventStreamReader(fresh.url, outsider.apiKey, 0).open();
      readers.push(outsiderReader);
      await waitFor('the outsider catch-up', async () => outsiderReader.ids().length >= 1, {
        timeoutMs: 5_000,
        intervalMs: 10,
      });
      expect(outsiderReader.events.map((event) => event.type)).toEqual(['funded']);
    } finally {
      await fresh.stop();
    }
  });

  it('speaks the REST dialect: an event line per message, snake_case fields, USD amounts, the envelope ids', async () => {
    const [creatorStream, workerStream] = [await stream(creator), await stream(worker)];
    const escrowId = await expectDelivered(create(creator, worker), 'funded', [creatorStream, workerStream]);
    await api.post(`/escrow/complete/${escrowId}`, { result_summary: '0.34' }, worker.apiKey);
    const release = await api.post(`/escrow/release/${escrowId}`, {}, creator.apiKey);
    const released = await workerStream.waitForEvent(escrowId, 'released');
    expect(released.event).toBe('released');
    expect(released.body).toMatchObject({
      type: 'released',
      stream: `escrow-${escrowId}`,
      version: expect.any(Number),
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    // The same names and amounts as the release answer the creator got.
    expect(released.body.data).toMatchObject({
      escrow_id: escrowId,
      status: 'released',
      actor: creator.agentId,
      amount_usd: 1,
      released_to_counterparty: release.body.released_to_counterparty,
      commission: release.body.commission,
      commission_usd: release.body.commission,
    });
    const completed = await workerStream.waitForEvent(escrowId, 'completed');
    expect(completed.body.data).toEqual({
      escrow_id: escrowId,
      status: 'completed',
      actor: worker.agentId,
      result_summary: '0.34',
    });
    for (const event of workerStream.events) {
      expect(event.event).toBe(event.type);
      expect(JSON.stringify(event.body)).not.toMatch(/Micros|escrowId|"[0-9]+"/);
    }
  });

  it('opens with a short-lived stream token (EventSource cannot send headers), which opens nothing else', async () => {
    // A fresh agent: the others' earlier streams count against the per-agent limit.
    const worker = await api.register();
    const issued = await api.post('/escrow/events/stream-token', {}, worker.apiKey);
    expect(issued).toMatchObject({
      status: 201,
      body: { token: expect.stringMatching(/^est_/), expires_in_seconds: 60 },
    });
    const token = issued.body.token as string;
    expect(issued.body.stream_url).toBe(`/escrow/events/stream?token=${token}`);
    expect(token).not.toContain(worker.apiKey);

    const viaToken = await new EventStreamReader(system.gatewayUrl, { token }).open();
    readers.push(viaToken);
    const escrowId = await expectDelivered(create(creator, worker), 'funded', [viaToken]);
    expect(viaToken.events.map((event) => event.escrowId)).toEqual([escrowId]);
    // EventSource's reconnect repeats the URL and adds Last-Event-ID.
    const resumed = await new EventStreamReader(system.gatewayUrl, { token }, viaToken.ids()[0]! - 1).open();
    readers.push(resumed);
    await resumed.waitForEvent(escrowId, 'funded');

    // Not an API key anywhere else, not forgeable, not issued without a key.
    expect(await api.get('/api/v1/auth/balance', token)).toMatchObject({ status: 401 });
    const forged = token.replace(worker.agentId, outsider.agentId);
    expect(await api.get(`/escrow/events/stream?token=${forged}`)).toMatchObject({
      status: 401,
      body: { error: 'unauthorized' },
    });
    expect(await api.post('/escrow/events/stream-token', {})).toMatchObject({ status: 401 });
    // An Idempotency-Key does not keep the token (it would be stored in clear): never a replay.
    const withKey = () =>
      api.call('POST', '/escrow/events/stream-token', {
        key: worker.apiKey,
        headers: { 'idempotency-key': 'tok-1' },
        body: {},
      });
    const [first, second] = [await withKey(), await withKey()];
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
  });

  it('sends heartbeat comments while idle', async () => {
    const idle = await stream(outsiderPartner);
    await waitFor('a heartbeat', async () => idle.comments.includes('heartbeat'), {
      timeoutMs: HEARTBEAT_MS * 5,
      intervalMs: 20,
    });
    idle.close();
  });

  it('refuses without a key, with a bad Last-Event-ID, and past the per-agent limit, as JSON before streaming', async () => {
    expect(await api.get('/escrow/events/stream')).toMatchObject({
      status: 401,
      body: { error: 'unauthorized' },
    });
    const badId = await api.call('GET', '/escrow/events/stream', {
      key: outsider.apiKey,
      headers: { 'last-event-id': 'abc' },
    });
    expect(badId).toMatchObject({ status: 400, body: { error: 'invalid_request' } });

    const agent = await api.register();
    const open: EventStreamReader[] = [];
    for (let index = 0; index < PER_AGENT_MAX; index += 1) open.push(await stream(agent));
    const refused = await api.get('/escrow/events/stream', agent.apiKey);
    expect(refused).toMatchObject({ status: 429, body: { error: 'rate_limited' } });
    // A closed stream frees its place.
    open[0]!.close();
    await waitFor(
      'a place freed',
      async () => {
        const reader = new EventStreamReader(system.gatewayUrl, agent.apiKey);
        try {
          await reader.open();
          readers.push(reader);
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    );
  });

  it('closes open streams when the gateway shuts down, so it stops promptly', async () => {
    await stream(creator);
    const startedAtMs = Date.now();
    const exit = await system.services.gateway.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - startedAtMs).toBeLessThan(5_000);
  });
});
