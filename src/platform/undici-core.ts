import { createRequire } from "node:module";
import type { Agent as UndiciAgent, Dispatcher } from "undici";

/**
 * undici's Agent and request API without its entry module. `import "undici"` also loads
 * fetch, WebSocket, EventSource and the cache and mock layers: about 7 MB of idle RSS on the
 * box, where the platform client needs only a keep-alive Agent and `request`. These are the
 * two modules undici's own entry re-exports (index.js: `Agent`, and `request` =
 * api-request.js called on a dispatcher). undici is pinned exactly in package.json; the
 * platform client tests exercise this path against a real server.
 */
const require = createRequire(import.meta.url);

export const Agent = require("undici/lib/dispatcher/agent.js") as typeof UndiciAgent;

const apiRequest = require("undici/lib/api/api-request.js") as (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

/** `undici.request(url, options)` on a given dispatcher. */
export function request(url: string, options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const target = new URL(url);
  return apiRequest.call(dispatcher, { ...rest, origin: target.origin, path: `${target.pathname}${target.search}` });
}
