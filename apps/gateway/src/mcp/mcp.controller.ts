import { Controller, Delete, Get, Inject, Post, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, ErrorCode } from '@pf/contracts';
import { LOGGER, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { Logger } from 'pino';
import { bearerToken } from '../api/auth.guard.js';
import { JOB_MCP_TOOLS } from './mcp-job-tools.js';
import { REPUTATION_MCP_TOOLS } from './mcp-reputation-tools.js';
import { MCP_TOOLS, type McpToolDefinition } from './mcp-tools.js';

const SERVER_NAME = 'agent-marketplace';

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
      { capabilities: { tools: {} } },
    );
    for (const tool of [...MCP_TOOLS, ...JOB_MCP_TOOLS, ...REPUTATION_MCP_TOOLS]) {
      server.registerTool(
        tool.name,
        {
          description: tool.description,
          inputSchema: tool.input,
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
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
        ...(route.body ? { 'content-type': 'application/json' } : {}),
      },
      payload: route.body ? JSON.stringify(route.body) : undefined,
      // The caller's address, so per-address limits (rate limits, the faucet's) see the real client.
      remoteAddress: request.ip,
    });
    const body = parseBody(response.body);
    const isError = response.statusCode >= 400;
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
