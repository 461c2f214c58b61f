import { test } from "node:test";
import assert from "node:assert/strict";
import { commonJsExports } from "../../../src/kernel/commonjs-exports.js";

test("a namespace with its named exports is used as it is; a bundled one (default only) gives its default", async () => {
  const connect = (): string => "connected";
  const native = { connect, default: { connect } };
  assert.equal(commonJsExports(native, "connect"), native);
  const bundled = { default: { connect } } as { connect?: () => string; default: { connect: () => string } };
  assert.equal(commonJsExports(bundled, "connect").connect, connect);
  // node's own import of a real CommonJS package has both forms.
  const prom = await import("prom-client");
  assert.equal(typeof commonJsExports(prom, "Registry").Registry, "function");
});

test("a module without the export asked for is a clear error, not an undefined call later", () => {
  assert.throws(() => commonJsExports({ default: { other: 1 } } as { connect?: () => void }, "connect"), /no export "connect"/);
  assert.throws(() => commonJsExports({ default: null } as { connect?: () => void }, "connect"), /no export "connect"/);
});
