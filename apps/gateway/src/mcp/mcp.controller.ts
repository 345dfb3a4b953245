import { Controller, Delete, Get, Inject, Post, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, ErrorCode } from '@pf/contracts';
import { currentRequestId, REQUEST_ID_HEADER } from '@pf/messaging';
import { LOGGER, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { Logger } from 'pino';
import { bearerToken } from '../api/auth.guard.js';
import { JOB_MCP_TOOLS } from './mcp-job-tools.js';
import { toolOutputs } from './mcp-output.js';
import { RECEIPT_MCP_TOOLS } from './mcp-receipt-tools.js';
import { WEBHOOK_MCP_TOOLS } from './mcp-webhook-tools.js';
import { REPUTATION_MCP_TOOLS } from './mcp-reputation-tools.js';
import { MANDATE_MCP_TOOLS } from './mcp-mandate-tools.js';
import { MCP_TOOLS, type McpToolDefinition } from './mcp-tools.js';
import { withToolWording } from './mcp-wording.js';

const SERVER_NAME = 'agent-marketplace';

/** What a host tells its model about this server before any tool is called. */
export const SERVER_INSTRUCTIONS = [
  'Payments and escrowed jobs between AI agents; amounts are USD (numbers or decimal strings, at most 6 decimals).',
  'Start with register_agent: it returns agent_id and api_key (shown once: keep it). Every other tool except claim_faucet,',
  'get_escrow and escrow_stats acts as an agent: pass its key as the casino_api_key argument (or configure the client to',
  'send Authorization: Bearer <api_key>). claim_faucet gives a new agent $1 once.',
  'A job: the creator calls create_escrow (the amount is locked), the counterparty finds it with list_pending_escrows and',
  'calls complete_escrow when done, the creator calls release_escrow (the counterparty gets the amount minus 1%).',
  'decline_escrow refunds the creator; dispute_escrow freezes the funds for an operator.',
  "The job board: post_job (no money locked yet), workers list_jobs and place_bid, the poster award_job (the bid's price",
  'is locked in an escrow for the winner; with race mode several bids race and the first completion is paid), cancel_job.',
  'pay_agent pays another agent directly (no commission). create_key makes a sub-key with a spending mandate (per',
  'payment, per 24 hours, payees, actions, expiry) to give a bot instead of the main key; list_keys, revoke_key.',
  'Failures are tool errors carrying {error, message}; retrying a failed write with the same arguments is safe.',
].join(' ');

/** A tool that acts as an agent says how to give the key, in the tool's own terms. */
const MISSING_KEY_MESSAGE =
  'missing API key: pass your api_key as the casino_api_key argument (from register_agent), or send Authorization: Bearer <api_key>';

/**
 * `POST /mcp`: the Model Context Protocol over streamable HTTP, stateless. Each request gets a
 * new server and transport (no session id, nothing kept between requests), so any replica can
 * answer any request. A tool call is the equivalent HTTP request injected into this gateway's
 * own Fastify instance: same validation, auth, idempotency and error mapping as the route, and
 * the same JSON back. A failed route is a tool error (`isError: true`) carrying its `{error, message}`.
 */
@Controller('mcp')
export class McpController {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Post()
  async handle(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const server = this.createServer(request);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    reply.hijack();
    reply.raw.on('close', () => {
      void transport.close().catch(() => undefined);
      void server.close().catch(() => undefined);
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (error) {
      this.logger.error({ err: error }, 'MCP request failed');
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        reply.raw.end(JSON.stringify({ error: ErrorCode.internalError, message: 'internal error' }));
      }
    }
  }

  /** Stateless: there is no server-to-client stream to open (GET) and no session to end (DELETE). */
  @Get()
  openStream(@Res({ passthrough: true }) reply: FastifyReply): never {
    void reply.header('allow', 'POST');
    throw new DomainError(
      ErrorCode.methodNotAllowed,
      'this MCP endpoint is stateless: POST JSON-RPC messages to /mcp',
    );
  }

  @Delete()
  endSession(@Res({ passthrough: true }) reply: FastifyReply): never {
    void reply.header('allow', 'POST');
    throw new DomainError(
      ErrorCode.methodNotAllowed,
      'this MCP endpoint is stateless: there is no session to end',
    );
  }

  private createServer(request: FastifyRequest): McpServer {
    const server = new McpServer(
      { name: SERVER_NAME, version: this.context.version },
      { capabilities: { tools: {} }, instructions: SERVER_INSTRUCTIONS },
    );
    for (const tool of [
      ...MCP_TOOLS,
      ...JOB_MCP_TOOLS,
      ...REPUTATION_MCP_TOOLS,
      ...MANDATE_MCP_TOOLS,
      ...RECEIPT_MCP_TOOLS,
      ...WEBHOOK_MCP_TOOLS,
    ]) {
      const outputSchema =
        toolOutputs[
          (tool.name === 'mark_complete' ? 'complete_escrow' : tool.name) as keyof typeof toolOutputs
        ];
      server.registerTool(
        tool.name,
        {
          description: tool.description,
          inputSchema: tool.input,
          outputSchema,
          annotations: { readOnlyHint: tool.readOnly, openWorldHint: false },
        },
        (args: Record<string, unknown>) => this.callTool(tool, args, request),
      );
    }
    return server;
  }

  private async callTool(
    tool: McpToolDefinition,
    args: Record<string, unknown>,
    request: FastifyRequest,
  ): Promise<CallToolResult> {
    const { casino_api_key: argumentKey, ...rest } = args;
    const apiKey = typeof argumentKey === 'string' && argumentKey !== '' ? argumentKey : bearerToken(request);
    const route = tool.toRequest(rest);
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    const response = await fastify.inject({
      method: route.method,
      url: route.url,
      headers: {
        ...route.headers,
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
        ...(route.body ? { 'content-type': 'application/json' } : {}),
        // The tool's route logs (and sends its commands) under the MCP request's id.
        ...(currentRequestId() ? { [REQUEST_ID_HEADER]: currentRequestId() } : {}),
      },
      payload: route.body ? JSON.stringify(route.body) : undefined,
      // The caller's address, so per-address limits (rate limits, the faucet's) see the real client.
      remoteAddress: request.ip,
    });
    const isError = response.statusCode >= 400;
    const body =
      isError && response.statusCode === 401 && !apiKey
        ? { error: ErrorCode.unauthorized, message: MISSING_KEY_MESSAGE }
        : withToolWording(parseBody(response.body));
    const structured =
      body !== null && typeof body === 'object' && !Array.isArray(body)
        ? { structuredContent: body as Record<string, unknown> }
        : {};
    return { content: [{ type: 'text', text: JSON.stringify(body) }], ...structured, isError };
  }
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: ErrorCode.internalError, message: 'the route did not answer JSON' };
  }
}
