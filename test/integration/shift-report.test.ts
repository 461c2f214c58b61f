import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { LotHarness } from "../helpers/lot-harness.js";
import { tempDir } from "../helpers/demo-config.js";
import { startAedes } from "../helpers/aedes-broker.js";
import { MqttProbe, until } from "../helpers/mqtt-probe.js";
import { startEmulator } from "../../src/platform/emulator/emulator.js";
import { formatWireTime } from "../../src/platform/wire.js";
import type { RefundPayment } from "../../src/lanes/refunds.js";
import type { ShiftReport } from "../../src/shifts/shift-report.js";

/*
 * Attendant shifts on a real lot (the App with its store in a temp dir, the platform emulator,
 * an in-process MQTT broker): a shift started through the API, a cash exit and a hand release
 * driven through the simulated lane, a double payment owed back, a restart in the middle (the
 * shift stays open), the end with the report on screen, as a printable page and over MQTT —
 * sent later, since the broker is down when the shift ends.
 */

const HOUR_MS = 3_600_000;
const STAY_MS = 2.5 * HOUR_MS;
const FEE_FEN = 700; // the demo tariff for 2.5 h (test/integration/lane-exit-payments.test.ts)
const root = "lanekeeper/v1/demo-box-01";

const payment = (path: string, amountFen: number): RefundPayment => ({
  payType: path === "cash" ? 4 : 1,
  amountFen,
  orderNo: `O-${path}-${amountFen}`,
  payTimeMs: Date.now(),
  path,
  operator: "",
});

test("a shift: cash exit, hand release and refunds owed in its report; open across a restart; published over MQTT once the box is back online", async () => {
  // While `boxAway` is set the broker refuses everyone but the probe: the box is offline, the
  // probe keeps its subscription.
  let boxAway = false;
  const broker = await startAedes({ authenticate: (client, _user, _password, done) => done(null, !boxAway || client.id === "shift-probe") });
  const emulator = await startEmulator({ timeZone: "Asia/Shanghai" });
  const storeDir = tempDir("lk-shift-");
  const probe = await MqttProbe.connect(broker.url, { clientId: "shift-probe" });
  await probe.subscribe(`${root}/evt/#`, { qos: 1 });
  const withMqtt = (raw: Record<string, any>) => {
    raw.mqtt = { url: broker.url, protocolVersion: 4 };
  };
  let lot = await LotHarness.create({ emulator, storeDir, mutate: withMqtt });
  try {
    await until(() => lot.app.fleet?.state === "connected", 5000, "fleet connected");
    assert.deepEqual((await lot.api("GET", "/api/shift")).body, { open: false, shift: null, report: null });

    // A refund owed from before the shift: it must appear as carried over.
    await lot.app.lanes.refunds.add({
      id: "dp-old",
      kind: "double-payment",
      laneId: "out1",
      plate: "粤A00001",
      recordNo: "old-1",
      first: payment("cash", 300),
      second: payment("platform", 300),
      amountFen: 300,
      refundVia: "cash",
      foundAtMs: Date.now() - HOUR_MS,
    });

    // Writes need the token and an operator; one open shift at a time.
    assert.equal((await lot.api("POST", "/api/shift/start", { operator: "王芳" }, null)).status, 401);
    const noOperator = await lot.api("POST", "/api/shift/start", { operator: "  " });
    assert.equal(noOperator.status, 400);
    assert.equal(noOperator.body.error.code, "E_SHIFT");
    assert.equal((await lot.api("POST", "/api/shift/end", {})).body.error.code, "E_NO_OPEN_SHIFT");
    const started = await lot.api("POST", "/api/shift/start", { operator: "王芳" });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const shiftId: string = started.body.shift.id;
    const again = await lot.api("POST", "/api/shift/start", { operator: "李雷" });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, "E_SHIFT_OPEN");

    // One cash exit, one hand release.
    const cashStay = await lot.park("粤B30001", STAY_MS);
    await lot.arrive("out1", "粤B30001");
    await lot.awaitingPayment("out1");
    const paid = await lot.api("POST", "/api/lanes/out1/commands", { command: "cash-paid", operator: "王芳", reason: "cash at booth" });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    await lot.pass("out1");
    const freeStay = await lot.park("粤B30002", STAY_MS);
    await lot.arrive("out1", "粤B30002");
    await lot.awaitingPayment("out1");
    const opened = await lot.api("POST", "/api/lanes/out1/commands", { command: "open", operator: "王芳", reason: "driver has no phone" });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    await lot.pass("out1");
    await lot.waitForEvent("vehicle-left", { plate: "粤B30002" });
    // The same cash bill paid online too: owed back in cash.
    await lot.app.lanes.refunds.add({
      id: "dp-new",
      kind: "double-payment",
      laneId: "out1",
      plate: "粤B30001",
      recordNo: cashStay.recordNo,
      first: payment("cash", FEE_FEN),
      second: payment("platform", FEE_FEN),
      amountFen: FEE_FEN,
      refundVia: "cash",
    });

    const running = (await lot.api("GET", "/api/shift")).body as { open: boolean; report: ShiftReport };
    assert.equal(running.open, true);
    assert.deepEqual(
      running.report.cash.items.map((i) => [i.recordNo, i.amountFen, i.laneId, i.operator]),
      [[cashStay.recordNo, FEE_FEN, "out1", "王芳"]],
    );
    assert.deepEqual(
      running.report.cash.lanes.find((l) => l.laneId === "out1"),
      { laneId: "out1", count: 1, totalFen: FEE_FEN },
    );
    assert.deepEqual(
      running.report.releases.items.map((i) => [i.recordNo, i.operator, i.reason, i.dueFen]),
      [[freeStay.recordNo, "王芳", "driver has no phone", FEE_FEN]],
    );
    assert.ok(
      running.report.opens.items.some((o) => o.laneId === "out1" && o.operator === "王芳" && o.reason === "driver has no phone"),
      JSON.stringify(running.report.opens),
    );
    assert.deepEqual(
      running.report.refunds.found.items.map((r) => r.id),
      ["dp-new"],
    );
    assert.deepEqual(
      running.report.refunds.carried.items.map((r) => r.id),
      ["dp-old"],
    );
    assert.equal(running.report.refunds.owedAtEnd.totalFen, FEE_FEN + 300);

    // The old refund is paid back during the shift: the drawer is down by it.
    assert.equal((await lot.api("POST", "/api/refunds/dp-old/refunded", { operator: "王芳" })).status, 200);

    // A restart: the shift is still open, with the same totals.
    await lot.stop({ keepStore: true });
    lot = await LotHarness.create({ emulator, storeDir, mutate: withMqtt });
    const afterRestart = (await lot.api("GET", "/api/shift")).body as { open: boolean; shift: { id: string; operator: string }; report: ShiftReport };
    assert.equal(afterRestart.open, true);
    assert.equal(afterRestart.shift.id, shiftId);
    assert.equal(afterRestart.report.cash.totalFen, FEE_FEN);
    assert.equal(afterRestart.report.drawerFen, FEE_FEN - 300);
    await until(() => lot.app.fleet?.state === "connected", 5000, "fleet connected after the restart");

    // The box is offline when the shift ends: the report waits in the spool.
    boxAway = true;
    for (const id of broker.clientIds()) if (id !== "shift-probe") broker.dropClient(id);
    await until(() => lot.app.fleet?.state !== "connected", 5000, "fleet link noticed the broker is gone");
    const ended = await lot.api("POST", "/api/shift/end");
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    const report = ended.body.report as ShiftReport;
    assert.equal(report.endedBy, "王芳");
    assert.equal(report.cash.totalFen, FEE_FEN);
    assert.equal(report.refunds.owedAtEnd.totalFen, FEE_FEN, "the new refund is still owed; the old one was paid back");
    assert.equal(report.refunds.refundedInShift.cashFen, 300);
    assert.equal(report.drawerFen, FEE_FEN - 300);
    assert.deepEqual((await lot.api("GET", "/api/shift")).body.open, false);
    assert.equal((await lot.api("POST", "/api/shift/end", {})).status, 409, "nothing left to end");

    const listed = (await lot.api("GET", `/api/shifts?from=${report.startedAtMs}`)).body as { items: Array<{ id: string; totals: { cashFen: number; drawerFen: number } }> };
    assert.deepEqual(
      listed.items.map((s) => [s.id, s.totals.cashFen, s.totals.drawerFen]),
      [[shiftId, FEE_FEN, FEE_FEN - 300]],
    );
    assert.deepEqual((await lot.api("GET", `/api/shifts?from=${report.startedAtMs + 1}`)).body.items, []);
    assert.equal((await lot.api("GET", "/api/shifts?from=yesterday")).body.error.code, "E_SHIFT_FILTER");
    assert.deepEqual((await lot.api("GET", `/api/shifts/${shiftId}`)).body, report, "the stored report is the one shown at the end");
    assert.equal((await lot.api("GET", "/api/shifts/nope")).status, 404);

    const printed = await fetch(`${lot.apiUrl}/api/shifts/${shiftId}/print`);
    assert.equal(printed.status, 200);
    assert.match(printed.headers.get("content-type") ?? "", /text\/html/);
    assert.match(printed.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const html = await printed.text();
    assert.ok(html.includes("王芳") && html.includes(lot.app.config.lot.name) && html.includes("demo-box-01"), "lot, box and operator");
    assert.ok(
      html.includes(formatWireTime(report.startedAtMs, "Asia/Shanghai")) && html.includes(formatWireTime(report.endedAtMs!, "Asia/Shanghai")),
      "start and end in the lot's zone",
    );
    assert.ok(html.includes('<span id="cash-total">7.00</span>'), "cash total in yuan");
    assert.ok(html.includes("driver has no phone"));

    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(probe.on(`${root}/evt/shift-report`).length, 0, "nothing sent while offline");
    assert.ok(lot.app.fleet!.stats().spoolDepth >= 1, "the report is spooled");
    boxAway = false;
    const message = await probe.waitFor((m) => m.topic === `${root}/evt/shift-report`, 10_000, "evt/shift-report");
    const event = message.json<{ type: string; seq: number; data: ShiftReport }>();
    assert.equal(event.type, "shift-report");
    assert.deepEqual(event.data, report, "the report over MQTT is the one kept on the box");
    await until(() => lot.app.shifts.endedList()[0]?.published === true, 5000, "marked as published");
  } finally {
    await lot.stop();
    await probe.close();
    await emulator.stop();
    await broker.close();
    await rm(storeDir, { recursive: true, force: true });
  }
});
