import { createRequire } from "node:module";
import type { Agent as UndiciAgent, Dispatcher } from "undici";

/**
 * undici's Agent and request API without its entry module. `import "undici"` also loads
 * fetch, WebSocket, EventSource and the cache and mock layers: about 7 MB of idle RSS on the
 * box, where the platform client needs only a keep-alive Agent and `request`. These are the
 * two modules undici's own entry re-exports (index.js: `Agent`, and `request` =
 * api-request.js called on a dispatcher). undici is pinned exactly in package.json; the
 * platform client tests exercise this path against a real server.
 *
 * Even these two cost tens of milliseconds of CPU and about 3 MB to load, so they load on
 * first use, not at import: the service reaches ready without them and loads them right after
 * (`preloadUndici`), before the first car can need a platform call.
 */
const require = createRequire(import.meta.url);

type ApiRequest = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

interface UndiciCore {
  Agent: typeof UndiciAgent;
  apiRequest: ApiRequest;
}

let core: UndiciCore | undefined;

function undiciCore(): UndiciCore {
  core ??= {
    Agent: require("undici/lib/dispatcher/agent.js") as typeof UndiciAgent,
    apiRequest: require("undici/lib/api/api-request.js") as ApiRequest,
  };
  return core;
}

/** A keep-alive Agent (loads undici's dispatcher modules on the first one). */
export function createAgent(options: UndiciAgent.Options): UndiciAgent {
  return new (undiciCore().Agent)(options);
}

/** `undici.request(url, options)` on a given dispatcher. */
export function request(url: string, options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const target = new URL(url);
  return undiciCore().apiRequest.call(dispatcher, { ...rest, origin: target.origin, path: `${target.pathname}${target.search}` });
}

/** Loads the modules now (idempotent): called once the service is ready. */
export function preloadUndici(): void {
  undiciCore();
}
