import { z } from "zod";
import { routeDocs, sharedSchemas, type RouteDoc } from "./openapi-routes.js";

/**
 * The OpenAPI 3.1 document of the local API, generated from the zod schemas of
 * openapi-routes.ts with zod's own JSON Schema output (draft 2020-12, the dialect of 3.1).
 * Request bodies are described as the routes accept them (zod's input side: a field with a
 * default may be left out), answers as the box sends them (the output side).
 */

type JsonObject = Record<string, unknown>;

export interface OpenApiOptions {
  /** `platform.server.path`: where the section-4 route is mounted. */
  platformPath: string;
  version: string;
  /** The routes the server registered (`HttpServer.routeList()`): only those are described. */
  registered: ReadonlyArray<{ method: string; pattern: string }>;
}

const componentRef = (id: string): JsonObject => ({ $ref: `#/components/schemas/${id}` });

/** `/api/shifts/:id` → `/api/shifts/{id}`; `GET` + that → `getApiShiftsId`. */
const openApiPath = (pattern: string): string => pattern.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
const operationId = (route: RouteDoc): string =>
  route.method.toLowerCase() +
  route.path
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join("");

/** A registry's schemas as components: `$id`/`$schema` dropped (refs resolve against the document). */
function components(registry: z.core.$ZodRegistry<{ id: string }>, io: "input" | "output"): Record<string, JsonObject> {
  const converted = z.toJSONSchema(registry, { io, unrepresentable: "any", uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, JsonObject> };
  const out: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(converted.schemas)) {
    const { $id: _id, $schema: _schema, ...rest } = schema;
    out[id] = rest;
  }
  return out;
}

function inlineSchema(schema: z.ZodType, io: "input" | "output"): JsonObject {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonObject;
  return rest;
}

export function buildOpenApiDocument(options: OpenApiOptions): JsonObject {
  const registered = new Set(options.registered.map((r) => `${r.method.toUpperCase()} ${r.pattern}`));
  const routes = routeDocs(options.platformPath).filter((route) => registered.has(`${route.method} ${route.path}`));
  const names = new Map<z.ZodType, string>(Object.entries(sharedSchemas).map(([id, schema]) => [schema, id]));
  const requests = z.registry<{ id: string }>();
  const answers = z.registry<{ id: string }>();
  for (const [schema, id] of names) answers.add(schema, { id });

  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const route of routes) {
    const id = operationId(route);
    const parameters: JsonObject[] = [];
    for (const [, name] of route.path.matchAll(/:([A-Za-z0-9_]+)/g)) parameters.push({ name, in: "path", required: true, schema: { type: "string" } });
    for (const [name, schema] of Object.entries(route.query?.shape ?? {})) {
      const field = schema as z.ZodType;
      parameters.push({ name, in: "query", required: !field.safeParse(undefined).success, schema: inlineSchema(field, "input") });
    }
    const responses: Record<string, JsonObject> = {};
    for (const [status, answer] of Object.entries(route.responses)) {
      let content: JsonObject;
      if (answer.json) {
        let name = names.get(answer.json);
        if (name === undefined) {
          name = `${id[0]!.toUpperCase()}${id.slice(1)}${status}`;
          names.set(answer.json, name);
          answers.add(answer.json, { id: name });
        }
        content = { "application/json": { schema: componentRef(name) } };
      } else if (answer.eventData) {
        // Server-sent events: OpenAPI 3.1 has no place for a frame's shape, so it is named in an extension.
        const name = names.get(answer.eventData);
        content = { [answer.contentType ?? "text/event-stream"]: { schema: { type: "string" }, ...(name === undefined ? {} : { "x-event-data": componentRef(name) }) } };
      } else {
        content = { [answer.contentType ?? "text/plain"]: { schema: { type: "string" } } };
      }
      responses[status] = { description: answer.description, content };
    }
    responses.default = { $ref: "#/components/responses/Error" };
    const operation: JsonObject = {
      operationId: id,
      summary: route.summary,
      tags: [route.tag],
      security: route.access === "token" ? [{ bearer: [] }] : route.access === "read" ? [{}, { bearer: [] }] : [],
      ...(parameters.length > 0 ? { parameters } : {}),
      responses,
    };
    if (route.body) {
      const name = `${id[0]!.toUpperCase()}${id.slice(1)}Body`;
      requests.add(route.body, { id: name });
      operation.requestBody = { required: route.path !== "/api/shift/end", content: { "application/json": { schema: componentRef(name) } } };
    }
    (paths[openApiPath(route.path)] ??= {})[route.method.toLowerCase()] = operation;
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "lanekeeper local API",
      version: options.version,
      description:
        "The box's own HTTP API (docs/api.md). Writes need `Authorization: Bearer <api.token>`; reads (security `{}` or bearer) are open on loopback by default (`api.openReads`) and need the token from elsewhere. Every refusal is the `Error` shape with a stable code.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    paths,
    components: {
      schemas: { ...components(requests, "input"), ...components(answers, "output") },
      responses: {
        Error: { description: "A refusal with a stable code (401 E_AUTH, 400 E_JSON, 413 E_TOO_LARGE, …)", content: { "application/json": { schema: componentRef("Error") } } },
      },
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "`api.token`; a GET may carry it as `?access_token=`" } },
    },
  };
}
