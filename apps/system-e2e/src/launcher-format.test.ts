import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { workspaceRoot } from '@pf/testing';

/** tools/ has no test project: the launcher's formatter is tested from its build, as launcher.test.ts does. */
const { prettyLine } = (await import(
  pathToFileURL(path.join(workspaceRoot(), 'dist', 'tools', 'start', 'log.js')).href
)) as { prettyLine: (line: string) => string };

describe('the launcher\u2019s terminal format (issue #21)', () => {
  it('shortens a pino line to time, level, message and fields', () => {
    expect(
      prettyLine(
        '{"level":"info","time":"2026-01-01T09:44:27.419Z","service":"escrow","pid":1,"msg":"escrow funded","escrowId":"esc_1","amount_usd":"5"}',
      ),
    ).toBe('09:44:27.419 INFO  escrow funded escrowId=esc_1 amount_usd=5');
  });

  it('shows an access line as method, route, status and latency', () => {
    expect(
      prettyLine(
        '{"level":"info","time":"2026-01-01T09:44:27.419Z","service":"gateway","msg":"request","method":"POST","route":"/escrow/create","status":201,"latency_ms":12.3,"agent_id":"ag_1","request_id":"r-1"}',
      ),
    ).toBe('09:44:27.419 INFO  POST /escrow/create 201 12.3ms agent_id=ag_1 request_id=r-1');
  });

  it('passes anything that is not a pino line through', () => {
    expect(prettyLine('plain text')).toBe('plain text');
  });
});
