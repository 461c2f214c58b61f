import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { findJsonSyntaxError, lineColumn, offsetFromMessage, parseJsonText } from "../../../src/config/json-errors.js";
import { loadConfigFile, readJsonFile } from "../../../src/config/load.js";
import { tempDir } from "../../helpers/demo-config.js";

/**
 * JSON syntax errors in config and tariff files as `file:line:column: reason`, whatever the
 * Node version's JSON.parse message says. LK_FUZZ_RUNS=N runs N cases per property.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);

// Each row: the file's text, the line and column of the mistake, and words of the reason.
const malformed: Array<[string, string, number, number, RegExp]> = [
  ["missing comma between members", '{\n  "a": 1\n  "b": 2\n}\n', 3, 3, /expected ',' or '\}' after a property value, found '"'/],
  ["stray word (no position in Node 20's message)", '{\n  "lot": {\n    "timeZone": Asia/Shanghai\n  }\n}', 3, 17, /unexpected 'A' where a value was expected/],
  ["trailing comma in an array", '{\n "a": [1, 2,]\n}', 2, 13, /comma before '\]'/],
  ["trailing comma in an object", '{"a": 1,\n}', 2, 1, /property name in double quotes.*comma before '\}'/],
  ["file cut short", '{"a": {"b": 1}', 1, 15, /unexpected end of input: an object is not closed/],
  ["unterminated string", '{"name": "North', 1, 16, /unterminated string/],
  ["a newline inside a string", '{"name": "North\nentry"}', 1, 16, /control character '\\n' in a string/],
  ["leading zero", '{"port": 08080}', 1, 11, /cannot start with 0/],
  ["single quotes", "{'a': 1}", 1, 2, /property name in double quotes, found '''/],
  ["comment", '{\n  // the lot\n  "a": 1\n}', 2, 3, /property name in double quotes, found '\/'/],
  ["two documents", '{"a": 1}\n{"b": 2}', 2, 1, /after the end of the JSON value/],
  ["byte order mark", '\uFEFF{"a": 1}', 1, 1, /byte order mark/],
  ["bad escape", '{"a": "C:\\lanekeeper"}', 1, 11, /bad escape \\l/],
  ["columns count characters, not UTF-16 units", '{"plate": "粤B·12345", 𝟙}', 1, 23, /property name in double quotes, found '𝟙'/],
  ["empty file", "", 1, 1, /unexpected end of input: no JSON value/],
  ["CRLF line ends", '{\r\n  "a": 1\r\n  "b": 2\r\n}', 3, 3, /expected ','/],
];

test("malformed files name the line and column of the mistake (real files, readJsonFile)", async () => {
  const dir = tempDir("lk-json-");
  for (const [name, text, line, column, reason] of malformed) {
    const file = join(dir, `${name.replace(/\W+/g, "-")}.json`);
    writeFileSync(file, text);
    const read = await readJsonFile(file);
    assert.equal(read.ok, false, name);
    if (read.ok) continue;
    assert.equal(read.problems.length, 1, name);
    const message = read.problems[0]!.message;
    assert.ok(message.startsWith(`${file}:${line}:${column}: `), `${name}: ${message}`);
    assert.match(message, reason, name);
    assert.doesNotMatch(message, /\n/, `${name}: one line`);
  }
});

test("a config with a syntax error is refused with file:line:column, and the text around it is not echoed", async () => {
  const dir = tempDir("lk-json-");
  const file = join(dir, "lanekeeper.json");
  // A secret near the mistake must not reach the message (V8 echoes the input around it).
  writeFileSync(file, '{\n  "platform": { "key": "S3CRET-KEY-0001" x }\n}\n');
  const loaded = await loadConfigFile(file);
  assert.equal(loaded.ok, false);
  if (loaded.ok) return;
  assert.equal(loaded.problems[0]!.path, "(root)");
  assert.match(loaded.problems[0]!.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2:42: expected ',' or '\\}'`));
  assert.ok(!loaded.problems[0]!.message.includes("S3CRET"));
});

test("JSON.parse's positions in the Node 20 and Node 22 message forms", () => {
  const text = '{\n  "a": 1\n  "b": 2\n}';
  // Node 20: "… in JSON at position 13"; Node 22 adds "(line 3 column 3)".
  assert.equal(offsetFromMessage(text, "Expected ',' or '}' after property value in JSON at position 13"), 13);
  assert.equal(offsetFromMessage(text, "Expected ',' or '}' after property value in JSON at position 13 (line 3 column 3)"), 13);
  assert.equal(offsetFromMessage(text, "Unexpected token 'b', \"…\" is not valid JSON (line 3 column 3)"), 13);
  assert.equal(offsetFromMessage(text, 'Unexpected token \'x\', "{"a": x}" is not valid JSON'), undefined);
  assert.equal(offsetFromMessage(text, "Unexpected end of JSON input"), undefined);
  assert.deepEqual(lineColumn(text, 13), { line: 3, column: 3 });
  // And the scanner finds the same place this Node's JSON.parse names, where it names one.
  try {
    JSON.parse(text);
    assert.fail("parsed");
  } catch (error) {
    const fromNode = offsetFromMessage(text, (error as Error).message);
    if (fromNode !== undefined) assert.equal(findJsonSyntaxError(text)?.offset, fromNode);
  }
});

test("property: the scanner accepts exactly what JSON.parse accepts, and agrees on the position when Node gives one", () => {
  const jsonish = fc.oneof(
    fc.json(),
    fc.string({ unit: fc.constantFrom(...'{}[],:"\\ \n\t0123456789.eE+-tfnrule abc\u0001\uFEFF') }),
    fc.json().map((t) => t.replace(/,/, "")),
  );
  fc.assert(
    fc.property(jsonish, (text) => {
      let nodeError: Error | undefined;
      try {
        JSON.parse(text);
      } catch (error) {
        nodeError = error as Error;
      }
      const found = findJsonSyntaxError(text);
      assert.equal(found === undefined, nodeError === undefined, `${JSON.stringify(text)}: scanner ${JSON.stringify(found)} vs ${nodeError?.message}`);
      if (!found || !nodeError) return;
      const fromNode = offsetFromMessage(text, nodeError.message);
      if (fromNode !== undefined) assert.equal(found.offset, fromNode, `${JSON.stringify(text)}: ${nodeError.message}`);
    }),
    { numRuns: runs },
  );
});

test("property: a valid file with a character deleted or inserted is still valid, or the error is at or after the damage", () => {
  // Nothing before the damage can be wrong (it is the start of a valid document), so the first
  // error is at the damaged character or later — later when, say, a closing quote is lost and
  // the string runs on. The reported line and column are those of that offset.
  const damaged = fc
    .tuple(
      fc.jsonValue().map((value) => JSON.stringify(value, null, 2)),
      fc.nat(),
      fc.boolean(),
      fc.constantFrom(...'{}[],:"\\ \nx0-.'),
    )
    .map(([valid, at, remove, char]) => {
      const p = at % (valid.length + (remove ? 0 : 1));
      return { p, text: remove ? valid.slice(0, p) + valid.slice(p + 1) : valid.slice(0, p) + char + valid.slice(p) };
    });
  fc.assert(
    fc.property(damaged, ({ p, text }) => {
      const parsed = parseJsonText(text);
      if (parsed.ok) return;
      const { offset, line, column } = parsed.problem;
      assert.ok(offset >= p, `${JSON.stringify(text)}: error at ${offset}, damage at ${p}`);
      assert.ok(offset <= text.length);
      assert.deepEqual({ line, column }, lineColumn(text, offset));
      const damage = lineColumn(text, p);
      assert.ok(line > damage.line || (line === damage.line && column >= damage.column), "line:column before the damage");
    }),
    { numRuns: runs },
  );
});
