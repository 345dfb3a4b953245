import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { errorText, followFeed, getJson, type PublicEvent } from './api.js';
import { Bars, LineChart } from './chart.js';
import { chartSeries, mergeBuckets, type HistoryBucket } from './history.js';
import { microsFrom, microsFromUsd, usdText } from './money.js';

interface EscrowStats {
  total_created: number;
  total_released: number;
  total_refunded: number;
  total_disputed: number;
  total_split: number;
  total_volume_micros: string;
  total_commission_micros: string;
  by_status: Record<string, number>;
  commission_rate: number;
}

/** The order the states are drawn in: the lifecycle, then the ends. */
const STATES_SHOWN = ['funded', 'completed', 'disputed', 'released', 'refunded', 'split'] as const;

interface Job {
  job_id: string;
  poster_id: string;
  title: string;
  budget_usd: number;
  status: string;
  bid_count: number;
  bids_close_at: string;
  posted_at: string;
  awards: Array<{
    bid_id: string;
    worker_id: string;
    escrow_id: string;
    price_usd: number;
    escrow_status: string;
  }>;
}

interface LeaderboardEntry {
  rank: number;
  agent_id: string;
  score: number;
  total_earned_micros: string;
  completed: number;
  on_time_rate: number | null;
}

/** Events kept on screen; older ones scroll away (the feeds can replay them). */
const EVENTS_SHOWN_MAX = 50;
/**
 * Hourly buckets the chart opens with (`GET /escrow/stats/history`), and the most it keeps as
 * new hours arrive while the page stays open.
 */
const HISTORY_HOURS = 24;
const CHART_POINTS_MAX = 168;
/** Totals are re-read this often even when no event arrives (settlements by other replicas…). */
const STATS_POLL_MS = 10_000;
/** Bursts of events cause one refresh of the lists, not one each. */
const REFRESH_DEBOUNCE_MS = 300;

function useDebounced(action: () => void): () => void {
  const timer = useRef<number | undefined>(undefined);
  return useCallback(() => {
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(action, REFRESH_DEBOUNCE_MS);
  }, [action]);
}

export function PublicView() {
  const [stats, setStats] = useState<EscrowStats | null>(null);
  const [buckets, setBuckets] = useState<HistoryBucket[]>([]);
  const [historyLoaded, setHistoryLoaded] = useState(false);
  const history = useMemo(() => chartSeries(buckets), [buckets]);
  const currentHour = buckets.at(-1);
  const [openJobs, setOpenJobs] = useState<Job[]>([]);
  const [awardedJobs, setAwardedJobs] = useState<Job[]>([]);
  const [leaders, setLeaders] = useState<LeaderboardEntry[]>([]);
  const [events, setEvents] = useState<PublicEvent[]>([]);
  const [feedsUp, setFeedsUp] = useState({ escrow: false, jobs: false });
  const [error, setError] = useState<string | null>(null);

  const loadStats = useCallback(async () => {
    try {
      // The live sample: the totals and the current hour's bucket (a new hour appends a point).
      const [next, current] = await Promise.all([
        getJson<EscrowStats>('/escrow/stats'),
        getJson<{ buckets: HistoryBucket[] }>('/escrow/stats/history?bucket=hour&limit=1'),
      ]);
      setStats(next);
      setBuckets((previous) => mergeBuckets(previous, current.buckets, CHART_POINTS_MAX));
    } catch (failure) {
      setError(errorText(failure));
    }
  }, []);

  /** The past hours, so a page just opened already has a chart. */
  const loadHistory = useCallback(async () => {
    try {
      const past = await getJson<{ buckets: HistoryBucket[] }>(
        `/escrow/stats/history?bucket=hour&limit=${HISTORY_HOURS}`,
      );
      setBuckets((previous) => mergeBuckets(past.buckets, previous, CHART_POINTS_MAX));
      setHistoryLoaded(true);
    } catch (failure) {
      setError(errorText(failure));
    }
  }, []);

  const loadJobs = useCallback(async () => {
    try {
      const [open, awarded] = await Promise.all([
        getJson<{ jobs: Job[] }>('/jobs?status=open&limit=20'),
        getJson<{ jobs: Job[] }>('/jobs?status=all&limit=20'),
      ]);
      setOpenJobs(open.jobs);
      setAwardedJobs(awarded.jobs.filter((job) => job.awards.length > 0));
    } catch (failure) {
      setError(errorText(failure));
    }
  }, []);

  const loadLeaders = useCallback(async () => {
    try {
      setLeaders((await getJson<{ entries: LeaderboardEntry[] }>('/leaderboard?limit=10')).entries);
    } catch (failure) {
      setError(errorText(failure));
    }
  }, []);

  const refreshStats = useDebounced(loadStats);
  const refreshJobs = useDebounced(loadJobs);
  const refreshLeaders = useDebounced(loadLeaders);

  useEffect(() => {
    void loadHistory();
    void loadStats();
    void loadJobs();
    void loadLeaders();
    const poll = window.setInterval(() => void loadStats(), STATS_POLL_MS);
    const onEvent = (event: PublicEvent) => {
      setEvents((previous) => [event, ...previous].slice(0, EVENTS_SHOWN_MAX));
      if (event.feed === 'jobs') refreshJobs();
      else {
        refreshStats();
        refreshJobs();
        if (event.type === 'released' || event.type === 'resolved') refreshLeaders();
      }
    };
    const closeEscrow = followFeed('escrow', onEvent, (up) =>
      setFeedsUp((state) => ({ ...state, escrow: up })),
    );
    const closeJobs = followFeed('jobs', onEvent, (up) => setFeedsUp((state) => ({ ...state, jobs: up })));
    return () => {
      window.clearInterval(poll);
      closeEscrow();
      closeJobs();
    };
  }, [loadHistory, loadStats, loadJobs, loadLeaders, refreshStats, refreshJobs, refreshLeaders]);

  return (
    <div class="view" id="public-view">
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <section aria-labelledby="totals-title">
        <h2 id="totals-title">Escrow volume and commission</h2>
        {stats ? (
          <dl class="totals">
            <div>
              <dt>Volume escrowed</dt>
              <dd data-testid="total-volume">{usdText(microsFrom(stats.total_volume_micros))}</dd>
            </div>
            <div>
              <dt>Commission earned</dt>
              <dd data-testid="total-commission">{usdText(microsFrom(stats.total_commission_micros))}</dd>
            </div>
            <div>
              <dt>Commission rate</dt>
              <dd>{(stats.commission_rate * 100).toFixed(2)}%</dd>
            </div>
            <div>
              <dt>Escrows created</dt>
              <dd data-testid="total-created">{stats.total_created}</dd>
            </div>
          </dl>
        ) : (
          <p>Loading…</p>
        )}
        <h3>Released per hour (UTC), last {HISTORY_HOURS} hours and live</h3>
        {currentHour && (
          <p class="muted">
            This hour:{' '}
            <strong data-testid="hour-volume">{usdText(microsFrom(currentHour.volume_micros))}</strong>{' '}
            released in {currentHour.released_count} escrow(s),{' '}
            <strong data-testid="hour-commission">
              {usdText(microsFrom(currentHour.commission_micros))}
            </strong>{' '}
            commission
          </p>
        )}
        <LineChart
          title="Volume released and commission per hour (USD)"
          source={historyLoaded ? 'history' : 'live'}
          times={history.times}
          values={[history.volume, history.commission]}
          series={[
            { label: 'volume', stroke: '#2563eb' },
            { label: 'commission', stroke: '#c2410c' },
          ]}
          valueLabel="USD"
        />
        <h3>Escrows by state</h3>
        {stats && (
          <Bars
            title="Escrows by state"
            rows={STATES_SHOWN.map((state) => ({ label: state, value: stats.by_status[state] ?? 0 }))}
          />
        )}
      </section>

      <section aria-labelledby="events-title">
        <h2 id="events-title">Live events</h2>
        <p class="muted">
          Escrow feed:{' '}
          <strong data-testid="escrow-feed-state">{feedsUp.escrow ? 'connected' : 'connecting'}</strong>
          {' · '}Job feed:{' '}
          <strong data-testid="jobs-feed-state">{feedsUp.jobs ? 'connected' : 'connecting'}</strong>
        </p>
        <ol class="events" aria-live="polite" data-testid="events">
          {events.map((event) => (
            <li key={`${event.feed}-${event.sequence}`}>
              <time dateTime={event.occurred_at}>{new Date(event.occurred_at).toLocaleTimeString()}</time>{' '}
              <strong>{event.type}</strong>{' '}
              <code>{event.data.escrow_id ?? event.data.job_id ?? event.stream}</code>
              {event.data.amount_micros && <> {usdText(microsFrom(event.data.amount_micros))}</>}
              {event.data.status && <span class="muted"> → {event.data.status}</span>}
            </li>
          ))}
        </ol>
        {events.length === 0 && <p class="muted">Waiting for the next event…</p>}
      </section>

      <section aria-labelledby="jobs-title">
        <h2 id="jobs-title">Job board</h2>
        <table data-testid="open-jobs">
          <caption>Open jobs</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Title</th>
              <th scope="col" class="num">
                Budget
              </th>
              <th scope="col" class="num">
                Bids
              </th>
              <th scope="col">Bids close</th>
            </tr>
          </thead>
          <tbody>
            {openJobs.map((job) => (
              <tr key={job.job_id}>
                <td>
                  <code>{job.job_id}</code>
                </td>
                <td>{job.title}</td>
                <td class="num">{usdText(microsFromUsd(job.budget_usd))}</td>
                <td class="num">{job.bid_count}</td>
                <td>
                  <time dateTime={job.bids_close_at}>{new Date(job.bids_close_at).toLocaleString()}</time>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {openJobs.length === 0 && <p class="muted">No open job.</p>}
        <table data-testid="awards">
          <caption>Recent awards</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Worker</th>
              <th scope="col">Escrow</th>
              <th scope="col" class="num">
                Price
              </th>
              <th scope="col">Escrow state</th>
            </tr>
          </thead>
          <tbody>
            {awardedJobs.flatMap((job) =>
              job.awards.map((award) => (
                <tr key={award.escrow_id}>
                  <td>{job.title}</td>
                  <td>
                    <code>{award.worker_id}</code>
                  </td>
                  <td>
                    <code>{award.escrow_id}</code>
                  </td>
                  <td class="num">{usdText(microsFromUsd(award.price_usd))}</td>
                  <td>{award.escrow_status}</td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="leaders-title">
        <h2 id="leaders-title">Leaderboard (worker reputation)</h2>
        <table data-testid="leaderboard">
          <thead>
            <tr>
              <th scope="col" class="num">
                Rank
              </th>
              <th scope="col">Agent</th>
              <th scope="col" class="num">
                Score
              </th>
              <th scope="col" class="num">
                Earned
              </th>
              <th scope="col" class="num">
                Completed
              </th>
              <th scope="col" class="num">
                On time
              </th>
            </tr>
          </thead>
          <tbody>
            {leaders.map((entry) => (
              <tr key={entry.agent_id}>
                <td class="num">{entry.rank}</td>
                <td>
                  <code>{entry.agent_id}</code>
                </td>
                <td class="num">{entry.score.toFixed(1)}</td>
                <td class="num">{usdText(microsFrom(entry.total_earned_micros))}</td>
                <td class="num">{entry.completed}</td>
                <td class="num">
                  {entry.on_time_rate === null ? '–' : `${Math.round(entry.on_time_rate * 100)}%`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {leaders.length === 0 && <p class="muted">No worker has a score yet.</p>}
      </section>
    </div>
  );
}
