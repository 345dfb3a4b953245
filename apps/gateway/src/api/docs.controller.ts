import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { FastifyReply } from 'fastify';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { DOCS_PAGE_CSP, DOCS_PAGE_HTML } from './docs-page.js';
import { ROUTE_DOCS } from './openapi-routes.js';
import { buildOpenApiDocument, routesOfControllers } from './openapi.js';

/** `GET /openapi.json` and `GET /docs`: the API described from the running app's own routes. */
@Controller()
export class DocsController {
  private document?: string;

  constructor(
    private readonly modules: ModulesContainer,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  @Get('openapi.json')
  async openApi(@Res() reply: FastifyReply): Promise<void> {
    // Built once, on first use: every controller is registered by then and never changes.
    this.document ??= JSON.stringify(
      buildOpenApiDocument({ version: this.context.version, routes: this.routes(), docs: ROUTE_DOCS }),
    );
    await reply
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'public, max-age=60')
      .send(this.document);
  }

  @Get('docs')
  async docs(@Res() reply: FastifyReply): Promise<void> {
    await reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', DOCS_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .send(DOCS_PAGE_HTML);
  }

  private routes() {
    const controllers = [...this.modules.values()].flatMap((moduleRef) =>
      [...moduleRef.controllers.values()].map((wrapper) => wrapper.metatype),
    );
    return routesOfControllers(
      controllers.filter(
        (controller): controller is NonNullable<typeof controller> => typeof controller === 'function',
      ) as never,
    );
  }
}
