import type { ModulesContainer } from '@nestjs/core';
import { ROUTE_DOCS } from './openapi-routes.js';
import { buildOpenApiDocument, routesOfControllers, type JsonSchema } from './openapi.js';

/**
 * The OpenAPI document of the running app, from its registered controllers: the one source
 * /openapi.json, /llms.txt, the service index and the agent card are all made from.
 */
export function describeRunningApi(modules: ModulesContainer, version: string): JsonSchema {
  const controllers = [...modules.values()].flatMap((moduleRef) =>
    [...moduleRef.controllers.values()].map((wrapper) => wrapper.metatype),
  );
  const routes = routesOfControllers(
    controllers.filter(
      (controller): controller is NonNullable<typeof controller> => typeof controller === 'function',
    ) as never,
  );
  return buildOpenApiDocument({ version, routes, docs: ROUTE_DOCS });
}
