import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { JOB_MCP_TOOLS } from '../mcp/mcp-job-tools.js';
import { MANDATE_MCP_TOOLS } from '../mcp/mcp-mandate-tools.js';
import { MCP_TOOLS } from '../mcp/mcp-tools.js';
import { describeRunningApi } from './api-description.js';
import { agentCard, LANDING_PAGE_CSP, landingPageHtml, prefersHtml, serviceIndex } from './discovery.js';
import { buildLlmsTxt, type ToolSummary } from './llms-txt.js';
import type { JsonSchema } from './openapi.js';

const TOOLS: readonly ToolSummary[] = [...MCP_TOOLS, ...JOB_MCP_TOOLS, ...MANDATE_MCP_TOOLS].map(
  ({ name, description }) => ({
    name,
    description,
  }),
);

/**
 * `GET /` (a page for a browser, the service index for an agent), `/llms.txt` (also under
 * `/.well-known/`) and `/.well-known/agent.json`: how a newcomer finds everything else.
 */
@Controller()
export class DiscoveryController {
  private document?: JsonSchema;
  private llmsTxt?: string;

  constructor(
    private readonly modules: ModulesContainer,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  @Get()
  async index(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    void reply.header('vary', 'accept').header('x-content-type-options', 'nosniff');
    if (prefersHtml(request.headers.accept)) {
      await reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('content-security-policy', LANDING_PAGE_CSP)
        .send(landingPageHtml(this.context.version));
      return;
    }
    await reply
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(serviceIndex(this.openApi(), this.context.version)));
  }

  @Get(['llms.txt', '.well-known/llms.txt'])
  async llms(@Res() reply: FastifyReply): Promise<void> {
    this.llmsTxt ??= buildLlmsTxt(this.openApi(), TOOLS);
    await reply
      .header('content-type', 'text/plain; charset=utf-8')
      .header('cache-control', 'public, max-age=60')
      .header('x-content-type-options', 'nosniff')
      .send(this.llmsTxt);
  }

  @Get('.well-known/agent.json')
  async agentJson(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const description = String((this.openApi().info as { description?: string }).description ?? '');
    const card = agentCard({
      baseUrl: baseUrlOf(request),
      version: this.context.version,
      description,
      tools: TOOLS,
    });
    await reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(card));
  }

  private openApi(): JsonSchema {
    // Built once, on first use: every controller is registered by then and never changes.
    this.document ??= describeRunningApi(this.modules, this.context.version);
    return this.document;
  }
}

/** The origin the caller reached (behind a trusted proxy, the one it forwarded). */
function baseUrlOf(request: FastifyRequest): string {
  const host = /^[A-Za-z0-9.:[\]-]+$/.test(request.host) ? request.host : 'localhost';
  return `${request.protocol}://${host}`;
}
