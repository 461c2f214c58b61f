// The lint rule that keeps swallowed rejections explained: what it flags and what a comment
// must look like to satisfy it.
import { describe, it } from "node:test";
import { RuleTester } from "eslint";
import { silentCatch } from "../../../scripts/eslint-silent-catch.mjs";

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const tester = new RuleTester({ languageOptions: { ecmaVersion: 2024, sourceType: "module" } });
const silent = [{ messageId: "silent" }];

tester.run("silent-catch", silentCatch, {
  valid: [
    // A reason on the line of .catch, on the line above, or before the statement.
    "p.catch(() => undefined); // the caller already has the error",
    "// Best effort: the original error is rethrown below.\nawait unlink(tmp).catch(() => undefined);",
    "// Only waiting for it to end.\nawait p\n  .then(() => 1)\n  .finally(() => 2)\n  .catch(() => undefined);",
    "const run = work();\n// The caller gets run; the chain only orders.\nchain = run.catch(() => undefined);",
    // Handled or logged: not silent.
    "p.catch((error) => log.warn({ err: error }, 'failed'));",
    "p.catch((error) => { counters.count('x'); });",
    "p.catch(() => false);",
    // A comment inside the handler is the reason.
    "p.catch(() => { /* the stop path: nothing left to tell */ });",
    // Not a promise's catch.
    "try { f(); } catch (e) { g(e); }",
    "obj['catch'](() => undefined);",
  ],
  invalid: [
    { code: "p.catch(() => undefined);", errors: silent },
    { code: "p.catch(() => {});", errors: silent },
    { code: "p.catch(function () {});", errors: silent },
    { code: "p.catch(() => null);", errors: silent },
    { code: "p.catch(() => void 0);", errors: silent },
    { code: "await close().catch(() => undefined);", errors: silent },
    // A comment two lines up, with a blank line between, is about something else.
    { code: "// a note\n\nawait unlink(tmp).catch(() => undefined);", errors: silent },
    // One comment explains one statement, not the one after it.
    { code: "// Best effort.\nawait a().catch(() => undefined);\nawait b().catch(() => undefined);", errors: silent },
    // Inside a larger expression: a comment far above the statement does not count.
    { code: "// about the object\nconst o = {\n  a: 1,\n  b: 2,\n  f: () => void p.catch(() => undefined),\n};", errors: silent },
  ],
});
