import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import {
  opsResultsStream,
  VERIFY_RESULT_BYTES_MAX,
  VERIFY_RESULT_LINE_CHARS_MAX,
  VERIFY_RESULT_LINES_MAX,
  verifyLastSubject,
  type VerifyResultRecord,
} from '@pf/contracts';
import { oneLine } from '@pf/ops-kit';
import type { OpsConfig } from './config.js';
import { withNats } from './nats.js';
import { note } from './output.js';

/** What one `ops verify` run saw, gathered while it runs. */
export interface VerifyRunSummary {
  selection: string;
  servicesVerified: string[];
  exitCode: number;
  checks: Array<{ name: string; status: 'ran' | 'skipped'; violations: number }>;
  lines: string[];
}

/**
 * The record kept for the operator view: complete counts, but only the first lines (cut short),
 * so the message stays bounded however broken the books are. Lines carry ids and amounts, never
 * a key or a URL with credentials (verify never prints those).
 */
export function verifyResultRecord(summary: VerifyRunSummary, finishedAt: Date): VerifyResultRecord {
  const violations = summary.checks.reduce((sum, check) => sum + check.violations, 0);
  return {
    finished_at: finishedAt.toISOString(),
    selection: summary.selection,
    services_verified: [...summary.servicesVerified],
    ok: summary.exitCode === 0 && violations === 0,
    exit_code: summary.exitCode,
    violations,
    checks: summary.checks.map((check) => ({ ...check })),
    lines: summary.lines
      .slice(0, VERIFY_RESULT_LINES_MAX)
      .map((line) =>
        line.length > VERIFY_RESULT_LINE_CHARS_MAX
          ? `${line.slice(0, VERIFY_RESULT_LINE_CHARS_MAX - 1)}…`
          : line,
      ),
    lines_truncated: summary.lines.length > VERIFY_RESULT_LINES_MAX,
  };
}

export type VerifyRecorder = (record: VerifyResultRecord) => Promise<void>;

/**
 * Puts the record on the OPS_RESULTS stream (created on first use, one message per subject).
 * Failing here never changes what verify printed or its exit code: one warning on stderr.
 */
export function natsVerifyRecorder(config: OpsConfig): VerifyRecorder {
  return async (record) => {
    try {
      await withNats(config, async (connection) => {
        const manager = await jetstreamManager(connection);
        const name = config.prefix.streamName(opsResultsStream.name);
        await manager.streams.info(name).catch(async () =>
          manager.streams.add({
            name,
            subjects: [config.prefix.subject(opsResultsStream.subjects)],
            retention: RetentionPolicy.Limits,
            storage: StorageType.File,
            max_msgs_per_subject: 1,
            max_msg_size: VERIFY_RESULT_BYTES_MAX,
            max_bytes: VERIFY_RESULT_BYTES_MAX * 16,
          }),
        );
        await jetstream(connection).publish(config.prefix.subject(verifyLastSubject), JSON.stringify(record));
      });
    } catch (error) {
      note(`ops: warning: the verify result was not recorded for the dashboard: ${oneLine(error)}`);
    }
  };
}
