import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findMosquitto, startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { MqttProbe } from "../helpers/mqtt-probe.js";
import { LotHarness } from "../helpers/lot-harness.js";
import { lotTopics } from "../../src/lot/lot-topics.js";

/*
 * Lot sharing against a real mosquitto with persistence, over MQTT 5 (docs/mqtt.md §12): the
 * finished stay's message expiry, the will, and a broker restarted mid-traffic that keeps its
 * retained set and the boxes' persistent sessions.
 */

const binary = findMosquitto();
const skip = binary ? false : "mosquitto not installed; .ci/run installs it";

if (!binary && process.env.CI) {
  test("mosquitto is installed on CI", () => {
    assert.fail("mosquitto not installed; .ci/run installs it, so CI without it is a broken image");
  });
}

async function twoBoxes(broker: Mosquitto): Promise<{ a: LotHarness; b: LotHarness; stop(): Promise<void> }> {
  const share = (raw: Record<string, any>, deviceId: string) => {
    raw.deviceId = deviceId;
    raw.lot.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 5, keepaliveS: 5 }, quietMs: 100, leftExpiryS: 3600 };
  };
  const a = await LotHarness.create({ mutate: (raw) => share(raw, "north-box") });
  const b = await LotHarness.create({
    emulator: a.emulator,
    mutate: (raw) => {
      share(raw, "south-box");
      raw.lanes[0].id = "in2";
      raw.lanes[1].id = "out2";
    },
  });
  return {
    a,
    b,
    async stop() {
      await b.stop();
      await a.stop();
    },
  };
}

test("MQTT 5: a finished stay is retained with its message expiry; the will says a box is gone", { skip }, async () => {
  const broker = await startMosquitto(binary!);
  const lot = await twoBoxes(broker);
  const probe = await MqttProbe.connect(broker.url, { protocolVersion: 5 });
  try {
    const topics = lotTopics("lanekeeper/v1", lot.a.config.lot.parkCode);
    const record = await lot.a.park("粤A70001", 60_000);
    await lot.b.until(() => lot.b.app.store.getInPark(record.recordNo) !== undefined, 1000, "A's stay at B");
    await lot.a.app.store.finishStay(record.recordNo, { laneId: "out1", leaveAtMs: Date.now(), reason: "normal" });
    await lot.b.until(() => lot.b.app.store.getInPark(record.recordNo) === undefined, 1000, "the stay gone at B");

    await probe.subscribe([topics.stay(record.recordNo), topics.boxesFilter]);
    const left = await probe.waitFor((m) => m.topic === topics.stay(record.recordNo), 2000, "the retained left version");
    assert.equal(left.json().state, "left");
    assert.ok(left.retain);
    const expiry = left.properties?.messageExpiryInterval;
    assert.ok(expiry !== undefined && expiry > 3500 && expiry <= 3600, `message expiry ${String(expiry)}`);

    // B's process dies without a word: the broker publishes its will.
    const before = probe.messages.length;
    (lot.b.app.lotShare as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await probe.waitFor((m) => probe.messages.indexOf(m) >= before && m.topic === topics.box("south-box") && m.json().online === false, 15_000, "B's will");
  } finally {
    await probe.close();
    await lot.stop();
    await broker.close();
  }
});

test("mosquitto with persistence restarted mid-traffic: the retained lot and the sessions survive; stays written meanwhile arrive", { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "lk-mosq-persist-"));
  const broker = await startMosquitto(binary!, { extraConfig: ["persistence true", `persistence_location ${dir}/`, "autosave_interval 1"] });
  const lot = await twoBoxes(broker);
  try {
    const first = await lot.a.park("粤A70002", 60_000);
    await lot.b.until(() => lot.b.app.store.getInPark(first.recordNo) !== undefined, 1000, "A's stay at B");

    await broker.stop();
    await lot.b.until(() => lot.b.app.lotShare!.status().view === "stale", 15_000, "B's view stale");
    // Written at A while the broker is away.
    const during = await lot.a.park("粤A70003", 60_000);
    await broker.start();
    await lot.b.until(() => lot.b.app.lotShare!.status().view === "live", 15_000, "B's view live again");
    await lot.b.until(() => lot.b.app.store.getInPark(during.recordNo) !== undefined, 5000, "the stay written while apart at B");

    // A box that comes new to the lot gets everything from the broker's persisted retained set.
    const probe = await MqttProbe.connect(broker.url, { protocolVersion: 5 });
    try {
      const topics = lotTopics("lanekeeper/v1", lot.a.config.lot.parkCode);
      await probe.subscribe(topics.staysFilter);
      await probe.waitFor((m) => m.topic === topics.stay(first.recordNo), 2000, "the stay from before the restart");
      await probe.waitFor((m) => m.topic === topics.stay(during.recordNo), 2000, "the stay from during the restart");
    } finally {
      await probe.close();
    }
    // The first stay survived the restart in the broker, so it was not published again.
    assert.equal(lot.a.app.lotShare!.status().counters.published, 2);
  } finally {
    await lot.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  }
});
