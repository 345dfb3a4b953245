import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MODULE_METADATA } from '@nestjs/common/constants.js';
import { httpStatusByErrorCode } from '@pf/contracts';
import { workspaceRoot } from '@pf/testing';
import { GatewayModule } from '../gateway.module.js';
import { JOB_MCP_TOOLS } from '../mcp/mcp-job-tools.js';
import { MANDATE_MCP_TOOLS } from '../mcp/mcp-mandate-tools.js';
import { MCP_TOOLS } from '../mcp/mcp-tools.js';
import { RECEIPT_MCP_TOOLS } from '../mcp/mcp-receipt-tools.js';
import { WEBHOOK_MCP_TOOLS } from '../mcp/mcp-webhook-tools.js';
import { routeKey, routesOfControllers } from './openapi.js';

/** docs/API.md is written by hand for people; these checks stop it drifting from the code. */
const apiMd = readFileSync(path.join(workspaceRoot(), 'docs', 'API.md'), 'utf8');

describe('docs/API.md against the code (issue #21)', () => {
  it('lists every error code of libs/contracts with its HTTP status', () => {
    const rows = new Map(
      [...apiMd.matchAll(/^\| `([a-z_]+)`\s*\| (\d{3})\s*\|/gm)].map((match) => [
        match[1]!,
        Number(match[2]),
      ]),
    );
    const wrong = Object.entries(httpStatusByErrorCode)
      .filter(([code, status]) => rows.get(code) !== status)
      .map(([code, status]) => `${code} ${status} (docs: ${rows.get(code) ?? 'missing'})`);
    expect(wrong).toEqual([]);
  });

  it('mentions every route the gateway serves', () => {
    const controllers = Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, GatewayModule) as Array<
      new () => unknown
    >;
    const missing = routesOfControllers(controllers)
      .map(routeKey)
      .filter((key) => !apiMd.includes(key));
    expect(missing).toEqual([]);
  });

  it('lists every MCP tool', () => {
    const missing = [
      ...MCP_TOOLS,
      ...JOB_MCP_TOOLS,
      ...MANDATE_MCP_TOOLS,
      ...RECEIPT_MCP_TOOLS,
      ...WEBHOOK_MCP_TOOLS,
    ]
      .map((tool) => tool.name)
      .filter((name) => !apiMd.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
