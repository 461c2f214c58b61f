import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { FakeClock } from "../../../helpers/fake-clock.js";
import { createLogger, silentLogger } from "../../../../src/kernel/log.js";
import { ScannerCodeParser, maskCode } from "../../../../src/io/scanner/code-parser.js";
import { SerialScanner } from "../../../../src/io/scanner/serial-scanner.js";
import { scannerOptionsSchema } from "../../../../src/io/scanner/config.js";
import { SimSerialLink } from "../../../../src/io/serial/sim-serial-link.js";
import type { PaymentCode } from "../../../../src/io/scanner/code-parser.js";

const options = scannerOptionsSchema.parse({});
const CODE = "134567890123456789"; // 18 digits, the common WeChat/Alipay length

test("digits 10-30 are codes; anything else is rejected with its reason", () => {
  const parser = new ScannerCodeParser(options);
  const results = parser.push(
    Buffer.from(
      `${CODE}\r123456789\r\n1234567890\n${"1".repeat(30)}\r\n${"1".repeat(31)}\r\n28A4567890123456\r\n  ${CODE}  \r\n${"9".repeat(80)}\r\n\u00b9234567890\r\n`,
      "latin1",
    ),
    7,
  );
  assert.deepEqual(
    results.map((r) => (r.ok ? r.code.code : r.reason)),
    [CODE, "length", "1234567890", "1".repeat(30), "length", "notDigits", CODE, "tooLong", "notDigits"],
  );
  const stats = parser.stats();
  assert.equal(stats.codes, 4);
  assert.deepEqual(stats.byReason, { tooLong: 1, notDigits: 2, length: 2 });
});

test("maskCode keeps only the last 4", () => {
  assert.equal(maskCode(CODE), "**************6789");
  assert.equal(maskCode("123"), "***");
});

test("serial scanner: codes reach the lane, rejects counted, the full code never logged", async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = createLogger({ level: "debug", destination: sink });
  const clock = new FakeClock();
  const link = new SimSerialLink("scan-out1", clock, silentLogger());
  const scanner = new SerialScanner("out1", link, options, log);
  const codes: PaymentCode[] = [];
  scanner.onCode((c) => codes.push(c));
  await scanner.start();
  link.emit(`${CODE.slice(0, 7)}`);
  link.emit(`${CODE.slice(7)}\r\n`); // split across reads, like a UART
  link.emit("hello\r\n");
  assert.deepEqual(codes, [{ code: CODE, atMs: clock.now(), laneId: "out1" }]);
  const status = scanner.status();
  assert.equal(status.codes, 1);
  assert.equal(status.rejected, 1);
  assert.equal(status.rejectedByReason.notDigits, 1);
  assert.deepEqual(status.lastCode, { masked: "**************6789", atMs: clock.now() });
  assert.equal(status.link.state, "up");
  const logText = lines.join("");
  assert.ok(logText.includes("**************6789"), "the masked code is logged");
  assert.ok(!logText.includes(CODE), "the full code is never logged");
  assert.ok(!JSON.stringify(status).includes(CODE), "the full code is not in the status");
  await scanner.stop();
  assert.equal(link.status().state, "down");
});

test("scanner options: min must not exceed max", () => {
  assert.equal(scannerOptionsSchema.safeParse({ minDigits: 20, maxDigits: 18 }).success, false);
});
