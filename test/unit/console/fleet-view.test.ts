import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FleetView, globMatcher, lsRow, renderLs } from "../../../src/console/fleet-view.js";
import { watchLine } from "../../../src/console/watch.js";
import { diffJson, renderDiff } from "../../../src/console/config.js";
import { parseCommandArgs } from "../../../src/console/cmd.js";

// The console's input boundary: whatever a box (or anyone allowed on the broker) publishes,
// the fold keeps its good state, counts the bad payload with a stable code and goes on.

const runs = Number(process.env.LK_FUZZ_RUNS ?? 200);
const status = (version: string) => Buffer.from(JSON.stringify({ v: 1, state: "online", boot: 2, version, configVersion: 0, ts: 1714519801250 }));

test("a bad payload is counted with its code and never replaces a good value", () => {
  const view = new FleetView();
  assert.equal(view.apply("lot7-box-01", "status", status("1.4.2"), 0), "status");
  assert.equal(view.apply("lot7-box-01", "status", Buffer.from("{not json"), 0), null);
  assert.equal(view.apply("lot7-box-01", "status", Buffer.from(JSON.stringify({ v: 2, state: "online" })), 0), null);
  assert.equal(view.apply("lot7-box-01", "health", Buffer.from("[".repeat(40)), 0), null);
  assert.equal(view.badPayloads, 3);
  const box = view.boxes.get("lot7-box-01")!;
  assert.equal(box.status?.version, "1.4.2");
  assert.equal(box.problem?.code, "E_CONSOLE_BAD_PAYLOAD");
  assert.match(renderLs([lsRow(box, 0)]), /lot7-box-01\s+lot7\s+1\.4\.2\s+online/);
  // An empty retained payload clears the box.
  view.apply("lot7-box-01", "status", Buffer.alloc(0), 0);
  assert.equal(view.boxes.size, 0);
});

test("fuzz: random payloads on every topic never throw and never lose the good status", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          rest: fc.constantFrom("status", "info", "health", "evt/payment", "res/open", "cfg/reported", "jobs/j1/status", "x/y"),
          payload: fc.oneof(
            fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
            fc.json().map((j) => Buffer.from(j)),
            fc.jsonValue().map((j) => Buffer.from(JSON.stringify({ v: 1, ...(typeof j === "object" && j !== null && !Array.isArray(j) ? j : { j }) }))),
          ),
        }),
        { maxLength: 30 },
      ),
      (messages) => {
        const view = new FleetView();
        view.apply("b-1", "status", status("9.9.9"), 0);
        for (const m of messages) {
          if (m.payload.length === 0) continue;
          view.apply("b-1", m.rest, m.payload, 1);
          const line = watchLine("lk", `lk/b-1/${m.rest}`, m.payload, false, 1);
          assert.ok(line === null || typeof line === "string");
        }
        assert.ok(view.boxes.get("b-1")?.status, "a good status is kept");
        renderLs(view.list().map((b) => lsRow(b, 2)));
      },
    ),
    { numRuns: runs },
  );
});

test("watch: a command answer shows its id, status, stable code and words", () => {
  const answer = (body: object): Buffer => Buffer.from(JSON.stringify({ v: 1, ts: 1, ...body }));
  const refused = watchLine("lk", "lk/b-1/res/opn", answer({ id: "op-1", status: "error", code: "E_CMD_UNKNOWN", error: 'unknown command "opn"' }), false, 0);
  assert.match(refused ?? "", / b-1 res\/opn op-1 error E_CMD_UNKNOWN unknown command "opn"$/);
  const ok = watchLine("lk", "lk/b-1/res/open", answer({ id: null, status: "ok" }), false, 0);
  assert.match(ok ?? "", / b-1 res\/open - ok$/);
});

test("globs: * and ? only; everything else is literal", () => {
  assert.ok(globMatcher("lot7-*")("lot7-box-01"));
  assert.ok(!globMatcher("lot7-*")("lot70box"));
  assert.ok(globMatcher("box-0?")("box-01"));
  assert.ok(!globMatcher("box.1")("boxx1"));
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), (s) => assert.ok(globMatcher(s.replace(/[*?]/g, ""))(s.replace(/[*?]/g, "")))),
    { numRuns: runs },
  );
});

test("config diff: every changed leaf by path, secrets hidden", () => {
  const changes = diffJson({ platform: { key: "old", url: "a" }, lanes: [{ id: "in1" }] }, { platform: { key: "new", url: "a" }, lanes: [{ id: "in1" }, { id: "out1" }], x: 1 });
  assert.equal(renderDiff(changes), ['+ lanes[1]: {"id":"out1"}', "~ platform.key: (hidden) → (hidden)", "+ x: 1"].join("\n"));
  fc.assert(
    fc.property(fc.jsonValue(), (j) => assert.deepEqual(diffJson(j, structuredClone(j)), [])),
    { numRuns: runs },
  );
});

test("command args: JSON when it reads as JSON, else text", () => {
  assert.deepEqual(parseCommandArgs(["n=2", "laneId=out1", "on=true", 's="2"']), { n: 2, laneId: "out1", on: true, s: "2" });
  assert.equal(parseCommandArgs([]), undefined);
  assert.throws(() => parseCommandArgs(["=x"]), /key=value/);
});
