import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { systemClock } from "../../src/kernel/clock.js";
import { silentLogger } from "../../src/kernel/log.js";
import { HttpServer } from "../../src/api/http-server.js";
import { createPlatformClient } from "../../src/platform/client.js";
import { platformConfigSchema } from "../../src/platform/config.js";
import { createMemoryLotPorts } from "../../src/platform/memory-ports.js";
import { createOpenInterfaceHandler, registerPlatformRoute } from "../../src/platform/server.js";
import { runCli, startCli } from "../helpers/child.js";
import { tempDir } from "../helpers/demo-config.js";

test("lanekeeper emulator: runs standalone, accepts a client's push, lists it, calls a box, stops on SIGTERM", async () => {
  // A box: the section-4 route on a real local server with memory ports.
  const platformRaw = { baseUrl: "http://127.0.0.1:9/", pid: "P200002", key: "K-CLI-TEST-KEY-0001", emulator: { frictionlessPlates: ["粤A00001"] } };
  const platform = platformConfigSchema.parse(platformRaw);
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: "test-token-0123456789", openReads: "loopback" }, silentLogger());
  const ports = createMemoryLotPorts({ totalSpaces: 12 });
  registerPlatformRoute(
    http,
    createOpenInterfaceHandler({
      config: { platform, lot: { parkCode: "TEST/1P1", timeZone: "Asia/Shanghai", totalSpaces: 12 }, lanes: [] },
      ports,
      clock: systemClock,
      log: silentLogger(),
    }),
  );
  await http.start();
  const boxUrl = `http://127.0.0.1:${http.address().port}/platform`;
  const configFile = join(tempDir("lk-emu-"), "lanekeeper.json");
  writeFileSync(configFile, JSON.stringify({ platform: platformRaw, lot: { timeZone: "Asia/Shanghai" } }));

  const running = startCli(["emulator", "--port", "0", "--config", configFile], { LANEKEEPER_LOG_LEVEL: "warn" });
  try {
    const [, url] = await running.waitFor(/listening on (http:\/\/\S+\/) \(pid P200002\)/);
    const client = createPlatformClient({ config: platformConfigSchema.parse({ ...platformRaw, baseUrl: url }), clock: systemClock, log: silentLogger() });
    const paid = await client.preLeaveNotify({
      parkCode: "TEST/1P1",
      recordNo: "R1",
      plateNum: "粤A00001",
      carType: 9,
      carSubType: 91,
      enterTime: "2023-11-14 20:00:00",
      leaveTime: "2023-11-14 21:00:00",
      payableFee: 100,
      discountFee: 0,
      paidFee: 100,
      sweepCode: 0,
      plateId: "EX1",
    });
    await client.close();
    assert.equal(paid.ok, true, JSON.stringify(paid));
    const received = await request(`${url}_emulator/received?service=preLeaveNotify`);
    const items = ((await received.body.json()) as { items: Array<{ biz: { plateId: string } }> }).items;
    assert.deepEqual(
      items.map((i) => i.biz.plateId),
      ["EX1"],
    );

    const call = await runCli(["emulator", "call", "queryFreeSpace", "--to", boxUrl, "--biz", '{"parkCode":"TEST/1P1"}', "--config", configFile]);
    assert.equal(call.code, 0, call.stderr + call.stdout);
    assert.match(call.stdout, /HTTP 200/);
    assert.match(call.stdout, /"freeSpaces": 12/);

    const refused = await runCli(["emulator", "call", "queryFreeSpace", "--to", boxUrl, "--biz", '{"parkCode":"TEST/1P1"}']);
    assert.equal(refused.code, 1, "demo credentials are not this box's pid");
    assert.match(refused.stdout, /pid P100001 is not this car park's partner id/);

    const usage = await runCli(["emulator", "call", "queryFreeSpace", "--biz", "{}"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--to/);

    running.child.kill("SIGTERM");
    const { code } = await running.exited;
    assert.equal(code, 0);
  } finally {
    if (running.child.exitCode === null) running.child.kill("SIGKILL");
    await http.stop();
  }
});
