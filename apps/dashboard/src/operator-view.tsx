import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, errorText, getJson } from './api.js';
import { microsFrom, usdText } from './money.js';

/** sessionStorage: the key lives as long as this tab, is never in a URL and never in localStorage. */
const KEY_STORAGE_NAME = 'pf.dashboard.adminKey';
const REFRESH_MS = 5_000;
/** The books' sum adds up every ledger entry of world, house revenue and escrow holding: less often. */
const BOOKS_REFRESH_MS = 15_000;

interface Accounts {
  books_sum_micros: string;
  agents_held_micros: string;
  agent_count: number;
  accounts: Array<{
    account: string;
    kind: 'system' | 'agent';
    available_micros: string;
    held_micros: string;
  }>;
}
interface LedgerCheck {
  ok: boolean;
  events_checked: number;
  accounts_checked: number;
  total_micros: string;
  checked_at: string;
  violations: Array<{ kind: string; account?: string; detail: string }>;
}
interface Streams {
  streams: Array<{
    name: string;
    exists: boolean;
    messages: number;
    last_sequence: number;
    consumers: Array<{
      name: string;
      durable: boolean;
      lag: number;
      redelivered: number;
      dead_letters: number;
    }>;
  }>;
}
interface Deadlines {
  now: string;
  overdue_count: number;
  pending_count: number;
  lag_ms: number;
  next: Array<{ escrow_id: string; due_at: string; status: string; action: string; amount_micros: string }>;
}
interface DeadLetter {
  sequence: number;
  consumer: string;
  subject: string;
  deliveries: string;
  failed_at: string;
  error: string;
}

function storedKey(): string | null {
  return window.sessionStorage.getItem(KEY_STORAGE_NAME);
}

export function OperatorView() {
  const [adminKey, setAdminKey] = useState<string | null>(storedKey);
  const [refusal, setRefusal] = useState<string | null>(null);

  const refuse = useCallback((error: unknown) => {
    window.sessionStorage.removeItem(KEY_STORAGE_NAME);
    setAdminKey(null);
    setRefusal(errorText(error));
  }, []);

  if (!adminKey) return <KeyForm refusal={refusal} onAccepted={setAdminKey} onRefused={refuse} />;
  return (
    <div class="view" id="operator-view">
      <p>
        Operator view. The key stays in this tab only.{' '}
        <button
          type="button"
          onClick={() => {
            window.sessionStorage.removeItem(KEY_STORAGE_NAME);
            setAdminKey(null);
            setRefusal(null);
          }}
        >
          Forget the key
        </button>
      </p>
      <Books adminKey={adminKey} onRefused={refuse} />
      <LedgerCheckPanel adminKey={adminKey} onRefused={refuse} />
      <CrossChecksPanel adminKey={adminKey} onRefused={refuse} />
      <SagaPanel adminKey={adminKey} onRefused={refuse} />
      <StreamsPanel adminKey={adminKey} onRefused={refuse} />
      <DeadLetters adminKey={adminKey} onRefused={refuse} />
      <Search adminKey={adminKey} onRefused={refuse} />
    </div>
  );
}

interface PanelProps {
  adminKey: string;
  onRefused: (error: unknown) => void;
}

function isRefusal(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 401 || error.status === 403);
}

/** Loads `path` with the key now and every REFRESH_MS; a refusal drops the key. */
function useAdminData<T>(
  path: string,
  { adminKey, onRefused }: PanelProps,
  refreshMs: number | null = REFRESH_MS,
) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setData(await getJson<T>(path, { adminKey }));
      setError(null);
    } catch (failure) {
      if (isRefusal(failure)) onRefused(failure);
      else setError(errorText(failure));
    }
  }, [path, adminKey, onRefused]);
  useEffect(() => {
    void load();
    if (refreshMs === null) return;
    const timer = window.setInterval(() => void load(), refreshMs);
    return () => window.clearInterval(timer);
  }, [load, refreshMs]);
  return { data, error, load };
}

function KeyForm(props: {
  refusal: string | null;
  onAccepted: (key: string) => void;
  onRefused: (error: unknown) => void;
}) {
  const [checking, setChecking] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const input = (event.currentTarget as HTMLFormElement).elements.namedItem(
      'admin-key',
    ) as HTMLInputElement;
    const key = input.value.trim();
    if (!key) return;
    setChecking(true);
    try {
      // One cheap admin read proves the key before it is kept.
      await getJson('/admin/accounts?limit=1', { adminKey: key });
      window.sessionStorage.setItem(KEY_STORAGE_NAME, key);
      props.onAccepted(key);
    } catch (error) {
      props.onRefused(error);
    } finally {
      setChecking(false);
      input.value = '';
    }
  };
  return (
    <section aria-labelledby="key-title">
      <h2 id="key-title">Operator view</h2>
      <p>
        Type the admin key (<code>ADMIN_API_KEY</code>; <code>npm start</code> keeps it in{' '}
        <code>.data/admin-api-key</code>). It is kept in this tab only and sent only in the Authorization
        header.
      </p>
      <form onSubmit={(event) => void submit(event)}>
        <label>
          Admin key
          <input id="admin-key" name="admin-key" type="password" autocomplete="off" required />
        </label>
        <button type="submit" disabled={checking}>
          Open operator view
        </button>
      </form>
      {props.refusal && (
        <p role="alert" class="refused" data-testid="refusal">
          Refused: {props.refusal}
        </p>
      )}
    </section>
  );
}

function Books(props: PanelProps) {
  const { data, error } = useAdminData<Accounts>('/admin/accounts?limit=50', props, BOOKS_REFRESH_MS);
  const sum = data ? microsFrom(data.books_sum_micros) : null;
  return (
    <section aria-labelledby="books-title">
      <h2 id="books-title">Books</h2>
      {error && <p class="error">{error}</p>}
      {data && sum !== null && (
        <>
          <p>
            Sum of every account:{' '}
            <strong data-testid="books-sum" class={sum === 0n ? 'ok' : 'error'}>
              {usdText(sum)}
            </strong>{' '}
            {sum === 0n ? '(balanced)' : '(NOT ZERO: the books do not balance)'} · {data.agent_count} agents ·
            held in escrows {usdText(microsFrom(data.agents_held_micros))}
          </p>
          <table data-testid="accounts">
            <caption>System accounts and the largest agent accounts</caption>
            <thead>
              <tr>
                <th scope="col">Account</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Available
                </th>
                <th scope="col" class="num">
                  Held
                </th>
              </tr>
            </thead>
            <tbody>
              {data.accounts.map((account) => (
                <tr key={account.account}>
                  <td>
                    <code>{account.account}</code>
                  </td>
                  <td>{account.kind}</td>
                  <td class="num">{usdText(microsFrom(account.available_micros))}</td>
                  <td class="num">{usdText(microsFrom(account.held_micros))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

/** `GET /admin/verify/last`: what the last `ops verify` run recorded. */
interface VerifyLast {
  finished_at: string;
  selection: string;
  ok: boolean;
  violations: number;
  checks: Array<{ name: string; status: 'ran' | 'skipped'; violations: number }>;
  lines: string[];
  lines_truncated: boolean;
}

/**
 * The cross-service checks need every service's database, so the gateway cannot run them: it
 * shows what `ops verify` recorded last (a 404 `no_verify_result` means it never ran here).
 */
function CrossChecksPanel({ adminKey, onRefused }: PanelProps) {
  const [data, setData] = useState<VerifyLast | null>(null);
  const [neverRun, setNeverRun] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setData(await getJson<VerifyLast>('/admin/verify/last', { adminKey }));
      setNeverRun(false);
      setError(null);
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'no_verify_result') {
        setData(null);
        setNeverRun(true);
        setError(null);
      } else if (isRefusal(failure)) onRefused(failure);
      else setError(errorText(failure));
    }
  }, [adminKey, onRefused]);
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);
  return (
    <section aria-labelledby="cross-checks-title">
      <h2 id="cross-checks-title">
        Cross-checks (last <code>ops verify</code>)
      </h2>
      {error && <p class="error">{error}</p>}
      {neverRun && (
        <p data-testid="cross-checks">
          never run: run <code>npm run ops -- verify all</code>
        </p>
      )}
      {data && (
        <div data-testid="cross-checks">
          <p>
            <strong class={data.ok ? 'ok' : 'error'}>
              {data.ok ? 'ok' : `${data.violations} violation(s)`}
            </strong>{' '}
            ({data.selection}) at{' '}
            <time dateTime={data.finished_at}>{new Date(data.finished_at).toLocaleString()}</time>
          </p>
          <ul>
            {data.checks.map((check) => (
              <li key={check.name}>
                {check.name}:{' '}
                {check.status === 'skipped'
                  ? 'skipped'
                  : check.violations === 0
                    ? 'ok'
                    : `${check.violations} violation(s)`}
              </li>
            ))}
          </ul>
          {data.lines.length > 0 && (
            <pre>
              {data.lines.join('\n')}
              {data.lines_truncated ? '\n…' : ''}
            </pre>
          )}
        </div>
      )}
    </section>
  );
}

function LedgerCheckPanel(props: PanelProps) {
  const { data, error, load } = useAdminData<LedgerCheck>('/admin/ledger/check', props, null);
  return (
    <section aria-labelledby="check-title">
      <h2 id="check-title">Invariant check</h2>
      <p>
        Recomputes every balance from casino's log: postings sum to zero, no agent below zero, projection
        equals log. The cross-service checks (holds ↔ escrows, claims ↔ transfers, awards ↔ escrows) run with{' '}
        <code>npm run ops -- verify</code>.
      </p>
      <button type="button" onClick={() => void load()}>
        Run the check again
      </button>
      {error && <p class="error">{error}</p>}
      {data && (
        <p data-testid="ledger-check">
          Last result:{' '}
          <strong class={data.ok ? 'ok' : 'error'}>
            {data.ok ? 'ok' : `${data.violations.length} violation(s)`}
          </strong>{' '}
          at <time dateTime={data.checked_at}>{new Date(data.checked_at).toLocaleTimeString()}</time> ·{' '}
          {data.events_checked} events, {data.accounts_checked} accounts, total{' '}
          {usdText(microsFrom(data.total_micros))}
        </p>
      )}
      {data && data.violations.length > 0 && (
        <ul>
          {data.violations.map((violation, index) => (
            <li key={index}>
              <code>{violation.kind}</code> {violation.account ?? ''}: {violation.detail}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function SagaPanel(props: PanelProps) {
  const { data, error } = useAdminData<Deadlines>('/admin/deadlines?limit=10', props);
  return (
    <section aria-labelledby="saga-title">
      <h2 id="saga-title">Timeout saga</h2>
      {error && <p class="error">{error}</p>}
      {data && (
        <>
          <p data-testid="saga">
            Lag:{' '}
            <strong class={data.lag_ms > 5_000 ? 'error' : 'ok'}>{(data.lag_ms / 1000).toFixed(1)} s</strong>{' '}
            · {data.overdue_count} deadline(s) due and not yet handled · {data.pending_count} pending
            (database clock <time dateTime={data.now}>{new Date(data.now).toLocaleTimeString()}</time>)
          </p>
          <table data-testid="deadlines">
            <caption>Next deadlines</caption>
            <thead>
              <tr>
                <th scope="col">Due</th>
                <th scope="col">Escrow</th>
                <th scope="col">Status</th>
                <th scope="col">Then</th>
                <th scope="col" class="num">
                  Amount
                </th>
              </tr>
            </thead>
            <tbody>
              {data.next.map((deadline) => (
                <tr key={deadline.escrow_id}>
                  <td>
                    <time dateTime={deadline.due_at}>{new Date(deadline.due_at).toLocaleString()}</time>
                  </td>
                  <td>
                    <code>{deadline.escrow_id}</code>
                  </td>
                  <td>{deadline.status}</td>
                  <td>{deadline.action === 'auto_release' ? 'auto-release' : 'refund'}</td>
                  <td class="num">{usdText(microsFrom(deadline.amount_micros))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

function StreamsPanel(props: PanelProps) {
  const { data, error } = useAdminData<Streams>('/admin/streams', props);
  return (
    <section aria-labelledby="streams-title">
      <h2 id="streams-title">JetStream streams and consumer lag</h2>
      {error && <p class="error">{error}</p>}
      {data && (
        <table data-testid="streams">
          <thead>
            <tr>
              <th scope="col">Stream</th>
              <th scope="col" class="num">
                Messages
              </th>
              <th scope="col">Consumer</th>
              <th scope="col" class="num">
                Lag
              </th>
              <th scope="col" class="num">
                Redelivered
              </th>
              <th scope="col" class="num">
                Dead letters
              </th>
            </tr>
          </thead>
          <tbody>
            {data.streams.flatMap((stream) => {
              const durable = stream.consumers.filter((consumer) => consumer.durable);
              const rows = durable.length > 0 ? durable : [null];
              return rows.map((consumer, index) => (
                <tr key={`${stream.name}-${consumer?.name ?? '-'}`}>
                  <td>{index === 0 ? stream.name : ''}</td>
                  <td class="num">{index === 0 ? (stream.exists ? stream.messages : 'missing') : ''}</td>
                  <td>
                    {consumer ? <code>{consumer.name}</code> : <span class="muted">no durable consumer</span>}
                  </td>
                  <td class="num">{consumer?.lag ?? ''}</td>
                  <td class="num">{consumer?.redelivered ?? ''}</td>
                  <td class="num">{consumer?.dead_letters ?? ''}</td>
                </tr>
              ));
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function DeadLetters(props: PanelProps) {
  const { data, error, load } = useAdminData<{ dead_letters: DeadLetter[] }>(
    '/admin/dead-letters?limit=100',
    props,
  );
  const [outcome, setOutcome] = useState<string | null>(null);
  const redrive = async (sequence: number) => {
    try {
      const result = await getJson<{ subject: string; stream_sequence: number }>(
        `/admin/dead-letters/${sequence}/redrive`,
        { adminKey: props.adminKey, method: 'POST' },
      );
      setOutcome(`#${sequence} re-driven to ${result.subject} (stream sequence ${result.stream_sequence})`);
    } catch (failure) {
      if (isRefusal(failure)) props.onRefused(failure);
      else setOutcome(`#${sequence}: ${errorText(failure)}`);
    }
    await load();
  };
  return (
    <section aria-labelledby="dlq-title">
      <h2 id="dlq-title">Dead letters</h2>
      {error && <p class="error">{error}</p>}
      {outcome && <p role="status">{outcome}</p>}
      {data && data.dead_letters.length === 0 && <p data-testid="dead-letters-empty">No dead letter.</p>}
      {data && data.dead_letters.length > 0 && (
        <table data-testid="dead-letters">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Consumer</th>
              <th scope="col">Subject</th>
              <th scope="col">Deliveries</th>
              <th scope="col">Failed at</th>
              <th scope="col">Error</th>
              <th scope="col">
                <span class="muted">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.dead_letters.map((letter) => (
              <tr key={letter.sequence}>
                <td>{letter.sequence}</td>
                <td>
                  <code>{letter.consumer}</code>
                </td>
                <td>
                  <code>{letter.subject}</code>
                </td>
                <td>{letter.deliveries}</td>
                <td>{new Date(letter.failed_at).toLocaleString()}</td>
                <td>{letter.error}</td>
                <td>
                  <button type="button" onClick={() => void redrive(letter.sequence)}>
                    Re-drive
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface EscrowRecord {
  escrow_id: string;
  status: string;
  creator_id: string;
  counterparty_id: string;
  description: string;
  amount_micros: string;
  commission_micros: string;
  net_to_counterparty_micros: string;
  payout: null | Record<string, string | null>;
  events: Array<{ type: string; at: string; actor: string }>;
}
interface AgentRecord {
  agent_id: string;
  available_micros: string;
  held_micros: string;
  lifetime: Record<string, string>;
  entries: Array<{
    type: string;
    amount_micros: string;
    balance_after_micros: string | null;
    reason: string;
    operation_id: string;
    at: string;
  }>;
}

function Search(props: PanelProps) {
  const [result, setResult] = useState<
    { kind: 'escrow'; record: EscrowRecord } | { kind: 'agent'; record: AgentRecord } | null
  >(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const input = (event.currentTarget as HTMLFormElement).elements.namedItem(
      'search-id',
    ) as HTMLInputElement;
    const id = input.value.trim();
    setError(null);
    setResult(null);
    try {
      if (id.startsWith('esc_'))
        setResult({
          kind: 'escrow',
          record: await getJson<EscrowRecord>(`/admin/escrow/${encodeURIComponent(id)}`, {
            adminKey: props.adminKey,
          }),
        });
      else if (id.startsWith('ag_'))
        setResult({
          kind: 'agent',
          record: await getJson<AgentRecord>(`/admin/agents/${encodeURIComponent(id)}`, {
            adminKey: props.adminKey,
          }),
        });
      else setError('an agent id (ag_…) or an escrow id (esc_…)');
    } catch (failure) {
      if (isRefusal(failure)) props.onRefused(failure);
      else setError(errorText(failure));
    }
  };
  return (
    <section aria-labelledby="search-title">
      <h2 id="search-title">Search</h2>
      <form onSubmit={(event) => void submit(event)} role="search">
        <label>
          Agent or escrow id
          <input id="search-id" name="search-id" type="search" required pattern="(ag|esc)_[0-9a-f]+" />
        </label>
        <button type="submit">Show history</button>
      </form>
      {error && <p class="error">{error}</p>}
      {result?.kind === 'escrow' && <EscrowResult record={result.record} />}
      {result?.kind === 'agent' && <AgentResult record={result.record} />}
    </section>
  );
}

function EscrowResult({ record }: { record: EscrowRecord }) {
  return (
    <div data-testid="search-result">
      <h3>
        Escrow <code>{record.escrow_id}</code>: {record.status}
      </h3>
      <p>
        {usdText(microsFrom(record.amount_micros))} from <code>{record.creator_id}</code> to{' '}
        <code>{record.counterparty_id}</code> (net {usdText(microsFrom(record.net_to_counterparty_micros))},
        commission {usdText(microsFrom(record.commission_micros))}): {record.description}
      </p>
      {record.payout && (
        <p>
          Paid: counterparty {usdText(microsFrom(record.payout.counterparty_micros ?? '0'))}, house{' '}
          {usdText(microsFrom(record.payout.house_micros ?? '0'))}, referrer{' '}
          {usdText(microsFrom(record.payout.referrer_micros ?? '0'))}, back to creator{' '}
          {usdText(microsFrom(record.payout.creator_micros ?? '0'))}
        </p>
      )}
      <ol>
        {record.events.map((event, index) => (
          <li key={index}>
            <time dateTime={event.at}>{new Date(event.at).toLocaleString()}</time>{' '}
            <strong>{event.type}</strong> by <code>{event.actor}</code>
          </li>
        ))}
      </ol>
    </div>
  );
}

function AgentResult({ record }: { record: AgentRecord }) {
  return (
    <div data-testid="search-result">
      <h3>
        Agent <code>{record.agent_id}</code>
      </h3>
      <p>
        Available {usdText(microsFrom(record.available_micros))}, held{' '}
        {usdText(microsFrom(record.held_micros))}; deposited{' '}
        {usdText(microsFrom(record.lifetime.deposited_micros ?? '0'))}, earned{' '}
        {usdText(microsFrom(record.lifetime.earned_micros ?? '0'))}
      </p>
      <table>
        <caption>Ledger entries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">At</th>
            <th scope="col">Type</th>
            <th scope="col">Reason</th>
            <th scope="col">Operation</th>
            <th scope="col" class="num">
              Amount
            </th>
            <th scope="col" class="num">
              Balance after
            </th>
          </tr>
        </thead>
        <tbody>
          {record.entries.map((entry, index) => (
            <tr key={index}>
              <td>{new Date(entry.at).toLocaleString()}</td>
              <td>{entry.type}</td>
              <td>{entry.reason}</td>
              <td>
                <code>{entry.operation_id}</code>
              </td>
              <td class="num">{usdText(microsFrom(entry.amount_micros))}</td>
              <td class="num">
                {entry.balance_after_micros === null ? '–' : usdText(microsFrom(entry.balance_after_micros))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
