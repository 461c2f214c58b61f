import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { DestinationStream } from "pino";
import { createLogger, formatHumanLine, isoTimestamp, resolveLogFormat } from "../../../src/kernel/log.js";
import { localDateTime, zoneOffsetMs } from "../../../src/core/time/zone.js";

/** The human log format: one readable line per entry on the lot's clock. LK_FUZZ_RUNS=N for more cases. */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 300);

function capture(): DestinationStream & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (text: string) => void lines.push(...text.split("\n").filter((l) => l !== "")) };
}

test("a lane's entry reads as time, level, subsystem and lane, message, fields; secrets stay hidden", () => {
  const out = capture();
  const log = createLogger({ format: "human", destination: out, timeZone: "Asia/Shanghai", level: "info" });
  const before = Date.now();
  log.child({ sub: "lane" }).child({ laneId: "north-in" }).info({ plate: "粤A12345", amountFen: 500, why: "paid in cash", key: "S3CRET" }, "exit paid");
  assert.equal(out.lines.length, 1);
  const line = out.lines[0]!;
  assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}lane north-in: exit paid plate=粤A12345 amountFen=500 why="paid in cash" key=HIDDEN$/);
  const local = localDateTime(before, "Asia/Shanghai");
  assert.ok(line.startsWith(`${String(local.hour).padStart(2, "0")}:`), `${line} is on the Shanghai clock`);
  assert.ok(!line.includes("S3CRET"));
});

test("an error shows its type and message on the line and its frames below; a level below the threshold is dropped", () => {
  const out = capture();
  const log = createLogger({ format: "human", destination: out, timeZone: "UTC", level: "warn" });
  log.info("not shown");
  const error = Object.assign(new TypeError("socket hang up"), { code: "ECONNRESET" });
  log.child({ sub: "platform" }).error({ err: error, laneId: "out1" }, "report failed");
  assert.match(out.lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} ERROR platform lane out1: report failed err="TypeError: socket hang up" errCode=ECONNRESET$/);
  assert.match(out.lines[1]!, /^ {4}at /);
});

test("the format: forced by LK_LOG_FORMAT, else human on a terminal and JSON otherwise; a wrong value is reported", () => {
  assert.deepEqual(resolveLogFormat({}, true), { format: "human" });
  assert.deepEqual(resolveLogFormat({}, false), { format: "json" });
  assert.deepEqual(resolveLogFormat({ LK_LOG_FORMAT: "json" }, true), { format: "json" });
  assert.deepEqual(resolveLogFormat({ LK_LOG_FORMAT: "human" }, false), { format: "human" });
  assert.deepEqual(resolveLogFormat({ LK_LOG_FORMAT: "" }, false), { format: "json" });
  assert.deepEqual(resolveLogFormat({ LK_LOG_FORMAT: "pretty" }, true), { format: "human", invalid: "pretty" });
});

test("property: any line is formatted without throwing, on one line unless an error stack follows", () => {
  // Control characters included: a plate or a platform message may carry a line break.
  const text = fc.oneof(fc.string({ unit: "binary-ascii" }), fc.constantFrom("\n", "a\nb", "\r\n", "x\u0001", "\u2028", "\u001b[2J", "\u009b31m", "\u007f"));
  const entry = fc.record(
    {
      time: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.string(),
        fc.integer(),
      ),
      level: fc.oneof(fc.constantFrom("info", "warn", "error"), fc.integer()),
      msg: fc.oneof(text, fc.jsonValue()),
      sub: fc.oneof(text, fc.integer()),
      laneId: fc.oneof(text, fc.jsonValue()),
      err: fc.oneof(fc.jsonValue(), fc.record({ type: text, message: text, code: text, stack: text })),
      extra: fc.dictionary(text, fc.oneof(text, fc.jsonValue())),
    },
    { requiredKeys: [] },
  );
  const line = fc.oneof(
    entry.map((e) => JSON.stringify(e)),
    text,
    fc.jsonValue().map((v) => JSON.stringify(v)),
  );
  fc.assert(
    fc.property(line, fc.constantFrom("Asia/Shanghai", "UTC", "America/St_Johns"), (jsonLine, zone) => {
      const formatted = formatHumanLine(`${jsonLine}\n`, zone);
      const parsed = ((): unknown => {
        try {
          return JSON.parse(jsonLine);
        } catch {
          return undefined;
        }
      })();
      const hasStack = typeof (parsed as { err?: { stack?: unknown } } | undefined)?.err?.stack === "string";
      if (!hasStack && parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
        assert.doesNotMatch(formatted, /\n/, `${jsonLine} → ${formatted}`);
        // Nor any other control character: an ESC would be a terminal escape sequence.
        assert.doesNotMatch(formatted, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, `${jsonLine} → ${JSON.stringify(formatted)}`);
      }
    }),
    { numRuns: runs },
  );
});

test("property: the JSON lines' time is Date#toISOString's, without it (it maps ICU's zone data)", () => {
  fc.assert(
    fc.property(fc.integer({ min: Date.parse("0000-01-01T00:00:00Z"), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }), (ms) => {
      assert.equal(isoTimestamp(ms), new Date(ms).toISOString());
    }),
    { numRuns: runs },
  );
  const out = capture();
  const before = Date.now();
  createLogger({ format: "json", destination: out }).info("stamped");
  const time = (JSON.parse(out.lines[0]!) as { time: string }).time;
  assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Date.parse(time) >= before && Date.parse(time) <= Date.now(), time);
});

test("property: the human clock read from a zone's offsets is the one Intl shows for the zone", () => {
  const zones = ["Asia/Shanghai", "America/St_Johns", "Asia/Kathmandu", "Europe/Berlin"];
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constantFrom(...zones), (ms, zone) => {
      const line = JSON.stringify({ time: ms, level: "info", msg: "m" });
      assert.equal(
        formatHumanLine(line, (at) => zoneOffsetMs(at, zone)),
        formatHumanLine(line, zone),
      );
    }),
    { numRuns: runs },
  );
  // A time out of Date's range prints without a clock either way.
  assert.match(
    formatHumanLine(JSON.stringify({ time: 9e15, msg: "far" }), () => 0),
    /^--:--:--\.--- /,
  );
});
