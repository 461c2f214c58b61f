/**
 * The exports of a CommonJS package loaded with `await import()`. Node gives such a namespace
 * its named exports (read from the package's source) beside `default`; the service's bundle
 * (scripts/bundle-service.ts) turns a lazily imported CommonJS package into a chunk whose
 * namespace has `default` only. `probe` is an export the caller needs: when the namespace lacks
 * it, the package's exports are its `default`.
 */
export function commonJsExports<T extends object>(namespace: T, probe: keyof T & string): T {
  if ((namespace as Record<string, unknown>)[probe] !== undefined) return namespace;
  const fallback = (namespace as { default?: unknown }).default;
  if (fallback !== null && (typeof fallback === "object" || typeof fallback === "function") && (fallback as Record<string, unknown>)[probe] !== undefined) return fallback as T;
  throw new TypeError(`the module loaded has no export "${probe}"`);
}
