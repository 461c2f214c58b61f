import { test } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../../../src/kernel/clock.js";
import { createPlatformClient } from "../../../src/platform/client.js";
import { platformConfigSchema } from "../../../src/platform/config.js";
import { demoCredentials, startEmulator } from "../../../src/platform/emulator/emulator.js";
import { capturingLogger } from "../../helpers/platform-fixtures.js";

/**
 * A log line is one JSON object with one `msg` (the logger's text). The platform's own text
 * travels as `platformMsg`: a second `msg` key would make JSON readers keep only one of them.
 */

test("a business-code answer is logged with platformMsg, and the line has a single msg", async () => {
  const emulator = await startEmulator({});
  const config = platformConfigSchema.parse({ baseUrl: emulator.url, pid: demoCredentials.pid, key: demoCredentials.key });
  const { log, lines } = capturingLogger();
  const client = createPlatformClient({ config, clock: systemClock, log });
  try {
    // An ordinary plate: the emulator answers 0 "待支付" (awaiting payment), a business code.
    const result = await client.preLeaveNotify({
      parkCode: "TEST/1P1",
      recordNo: "out1_20231114200000000",
      plateNum: "粤B54321",
      carType: 9,
      carSubType: 91,
      enterTime: "2023-11-14 20:00:00",
      leaveTime: "2023-11-14 22:13:20",
      payableFee: 500,
      discountFee: 0,
      paidFee: 500,
      outChannelid: "2",
      sweepCode: 0,
      plateId: "EXLOG1",
    });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.kind, "business-code");
    const line = lines.find((l) => l.includes("platform answered with a business code"));
    assert.ok(line, lines.join(""));
    assert.equal(line.match(/"msg":/g)?.length, 1, line);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed.msg, "platform answered with a business code");
    assert.equal(parsed.platformMsg, "待支付");
  } finally {
    await client.close();
    await emulator.stop();
  }
});
