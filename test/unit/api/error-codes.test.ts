import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { apiErrorCodes } from "../../../src/api/error-codes.js";
import { LABELS, errorText } from "../../../panel/i18n.js";

/*
 * Every code the local API can answer with is in the server's list, and every code in the
 * list has a Chinese and an English text in the panel: the page never has to show the box's
 * English message inside its Chinese text.
 */

const root = fileURLToPath(new URL("../../../", import.meta.url));
const listed = new Set<string>(Object.values(apiErrorCodes).flat());

/** Where the answers of the local API's routes come from: every code quoted in these files. */
const routeSources = [
  ...readdirSync(join(root, "src/api"))
    .filter((name) => name.endsWith(".ts") && name !== "error-codes.ts")
    .map((name) => join("src/api", name)),
  ...readdirSync(join(root, "src/shifts"))
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join("src/shifts", name)),
  "src/lanes/refunds.ts",
  "src/outbox/routes.ts",
  "src/io/camera/http-push.ts",
  "src/io/sim-device-routes.ts",
];
/** And what a command at a lane is refused with (`{ ok: false, code }`), wherever the lanes decide it. */
const commandSources = ["src/lanes", "src/core/settlement"].flatMap((dir) =>
  readdirSync(join(root, dir))
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(dir, name)),
);

test("every error code in the local API's sources is in the server's code list", () => {
  const found = new Map<string, string>();
  for (const file of routeSources) {
    for (const match of readFileSync(join(root, file), "utf8").matchAll(/["'`](E_[A-Z0-9_]+)["'`]/g)) found.set(match[1]!, file);
  }
  for (const file of commandSources) {
    for (const match of readFileSync(join(root, file), "utf8").matchAll(/ok: false, code: "(E_[A-Z0-9_]+)"/g)) found.set(match[1]!, file);
  }
  assert.ok(found.size > 30, `${found.size} codes found`);
  const missing = [...found].filter(([code]) => !listed.has(code)).map(([code, file]) => `${code} (${file})`);
  assert.deepEqual(missing, [], "codes the API answers with but src/api/error-codes.ts does not list");
  // The lanes' command refusals are among them (the scan sees them).
  for (const code of ["E_LANE_UNKNOWN", "E_NOT_EXIT", "E_NO_VEHICLE", "E_PAID_ONLINE"]) assert.ok(found.has(code), code);
});

test("every code in the server's list has a Chinese and an English text, and the panel has no stale ones", () => {
  for (const code of listed) {
    const zh = LABELS.zh.error?.[code];
    const en = LABELS.en.error?.[code];
    assert.equal(typeof zh, "string", `zh: ${code}`);
    assert.equal(typeof en, "string", `en: ${code}`);
    assert.match(zh!, /\p{Script=Han}/u, `zh text of ${code} is Chinese`);
    assert.doesNotMatch(zh!, /[a-z]{3,}/, `zh text of ${code} has no English words (acronyms such as JSON may stay)`);
  }
  assert.deepEqual(
    Object.keys(LABELS.zh.error ?? {}).filter((code) => !listed.has(code)),
    [],
  );
});

test("a refusal reads in the page's language; an unknown code still says refused with its status", () => {
  assert.equal(errorText("zh", "E_AUTH", 401), "需要有效的令牌，请重新登录");
  assert.equal(errorText("en", "E_REASON_REQUIRED", 400), "pick or type a reason to open");
  assert.equal(errorText("zh", "E_SOMETHING_NEW", 409), "被拒绝（HTTP 409，E_SOMETHING_NEW）");
  assert.equal(errorText("zh", undefined, 502), "被拒绝（HTTP 502）");
});
