import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { projectDir, projectUrl } from "../../../src/kernel/project-dir.js";

// The bundled service's side (chunks in dist/bundle/) is test/integration/bundled-service.test.ts.
test("the project root is the checkout that holds lanekeeper's package.json, from the sources too", () => {
  const checkout = resolve(import.meta.dirname, "..", "..", "..");
  assert.equal(projectDir(), checkout);
  const pkg = JSON.parse(readFileSync(projectUrl("package.json"), "utf8")) as { name: string };
  assert.equal(pkg.name, "lanekeeper");
  assert.equal(fileURLToPath(projectUrl("panel/")), `${checkout}/panel/`);
  assert.equal(fileURLToPath(new URL("index.html", projectUrl("panel/"))), `${checkout}/panel/index.html`);
});
