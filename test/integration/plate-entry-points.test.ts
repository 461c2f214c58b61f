import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { request } from "undici";
import { FakeClock } from "../helpers/fake-clock.js";
import { silentLogger } from "../../src/kernel/log.js";
import { HttpServer } from "../../src/api/http-server.js";
import { isNoPlate, normalisePlate, plateKey, readPlate } from "../../src/core/plates/index.js";
import { CameraLineParser } from "../../src/io/camera/line-parser.js";
import { cameraOptionsSchema } from "../../src/io/camera/config.js";
import { registerCameraPushRoute } from "../../src/io/camera/http-push.js";
import type { PlateRead } from "../../src/io/camera/plate-read.js";
import { LotHarness } from "../helpers/lot-harness.js";

/*
 * One plate text, five ways in: the camera's serial line, the camera's HTTP push, the cloud's
 * section-4 request, the local API and the store. Each must see the same plate — the core's
 * `plateKey` of the text ("" for "no plate") — or a car read at the entry would not be found at
 * the exit, or the cloud's query would miss a stay the panel shows.
 *
 * LK_FUZZ_RUNS=N drives N random texts through every entry point instead of the default.
 */

const fuzzRuns = Number(process.env.LK_FUZZ_RUNS ?? 40);

/** raw text → the plate key every entry point must see ("" = no plate). */
const table: ReadonlyArray<readonly [string, string]> = [
  ["粤B12345", "粤B12345"],
  ["粤b12345", "粤B12345"], // lower case
  ["粤Ｂ１２３４５", "粤B12345"], // full-width letters and digits (GBK input methods)
  ["粤Ｂ　１２３４５", "粤B12345"], // ideographic space
  ["粤B 12345", "粤B12345"],
  [" 粤B·12345 ", "粤B12345"], // the dot cameras print, and padding
  ["粤B-12345", "粤B12345"],
  ["粤B_12345", "粤B12345"],
  ["粤B・12345", "粤B12345"], // katakana middle dot
  ["京AD12345", "京AD12345"], // 8-character new-energy plate
  ["京ad·12345", "京AD12345"],
  ["京Ａ-Ｄ１２３４５", "京AD12345"],
  ["粤Z1234港", "粤Z1234港"], // Hong Kong cross-border suffix
  ["粤z·1234港", "粤Z1234港"],
  ["粤B1234学", "粤B1234学"],
  ["无ES16V2A", "ES16V2A"], // an unlicensed car's virtual plate, with the 无 the platform may add
  ["ES16V2A", "ES16V2A"],
  ["es16v2a", "ES16V2A"],
  ["_无_", ""], // Zhenshi/Vzenith "no plate"
  ["无", ""],
  ["无牌", ""],
  ["无牌车", ""],
  ["无车牌", ""],
  ["未识别", ""],
  ["NONE", ""],
  ["unknown", ""],
  [" 无 牌 ", ""],
  ["", ""],
  ["   ", ""],
];

/** The stays in the lot, as the lanes store them. */
const parked = ["粤B12345", "京AD12345", "粤Z1234港", "粤B1234学", "无ES16V2A"];

const AT = 1_705_284_050_000;
const lineParser = (): CameraLineParser => new CameraLineParser(cameraOptionsSchema.parse({ template: "%PLATE%,%COLOR%,%CONFIDENCE%", encoding: "utf8" }));

interface Rig {
  lot: LotHarness;
  /** recordNo by parked plate. */
  stays: Map<string, string>;
  pushUrl: string;
  pushed: PlateRead[];
  clock: FakeClock;
  plateIdSeq: number;
}

async function withRig(run: (rig: Rig) => Promise<void>): Promise<void> {
  const lot = await LotHarness.create();
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: "test-token-0123456789", openReads: "loopback" }, silentLogger());
  const pushed: PlateRead[] = [];
  const clock = new FakeClock(AT);
  registerCameraPushRoute(http, { lanes: ["in1"], onRead: (_laneId, read) => pushed.push(read), clock });
  try {
    await http.start();
    const stays = new Map<string, string>();
    for (const plate of parked) stays.set(plate, (await lot.park(plate, 3_600_000)).recordNo);
    const rig: Rig = { lot, stays, pushUrl: `http://127.0.0.1:${http.address().port}/camera/in1`, pushed, clock, plateIdSeq: 0 };
    await run(rig);
  } finally {
    await http.stop();
    await lot.stop();
  }
}

/** The plate key each entry point saw for `raw` ("" when it saw no plate or refused the text). */
interface Seen {
  cameraLine: string;
  cameraPush: string;
  /** The recordNos each lookup found. */
  store: string[];
  section4: string[];
  api: string[];
}

function keyOfRead(read: PlateRead | undefined): string {
  return read === undefined || read.noPlate ? "" : plateKey(read.plate);
}

async function throughEveryEntryPoint(rig: Rig, raw: string): Promise<{ seen: Seen; lineRead: PlateRead | undefined; pushRead: PlateRead | undefined }> {
  // Camera serial line, through the line parser.
  const [line] = lineParser().push(Buffer.from(`${raw},蓝,90\n`, "utf8"), AT);
  const lineRead = line?.ok ? line.read : undefined;

  // Camera HTTP push, through the real route on loopback.
  const before = rig.pushed.length;
  await rig.clock.advance(60_000); // another car, well apart from the last
  const body = JSON.stringify({ AlarmInfoPlate: { result: { PlateResult: { license: raw, colorType: 1, plateid: ++rig.plateIdSeq } } } });
  const res = await request(rig.pushUrl, { method: "POST", body, headers: { "content-type": "application/json" } });
  await res.body.text();
  const pushRead = res.statusCode === 200 ? rig.pushed[before] : undefined;
  if (res.statusCode !== 200) assert.equal(rig.pushed.length, before, "a refused push delivers nothing");

  // The store.
  const store = rig.lot.app.store.findInParkByPlate(raw).map((r) => r.recordNo);

  // Section 4, signed by the emulated cloud and answered by the box's real server.
  const answer = (await rig.lot.callBox("queryInPark", { plateNum: raw })).body as { code: number; data?: { inPark: number; recordNo?: string } };
  const section4 = answer.code === 200 && answer.data?.inPark === 1 ? [answer.data.recordNo!] : [];

  // The local API's search.
  const api = await rig.lot.api("GET", `/api/records?plate=${encodeURIComponent(raw)}`);
  assert.equal(api.status, 200);
  const apiFound = (api.body.inPark as Array<{ recordNo: string }>).map((r) => r.recordNo);

  return { seen: { cameraLine: keyOfRead(lineRead), cameraPush: keyOfRead(pushRead), store, section4, api: apiFound }, lineRead, pushRead };
}

const sorted = (values: string[]): string[] => [...values].sort();

function staysOf(rig: Rig, key: string): string[] {
  return [...rig.stays].filter(([plate]) => plateKey(plate) === key).map(([, recordNo]) => recordNo);
}

test("every entry point sees the same plate for the same text (table)", async () => {
  await withRig(async (rig) => {
    for (const [raw, expected] of table) {
      assert.equal(plateKey(raw), expected, `plateKey(${JSON.stringify(raw)})`);
      const { seen, lineRead, pushRead } = await throughEveryEntryPoint(rig, raw);
      const wanted = staysOf(rig, expected);
      const where = `for ${JSON.stringify(raw)}`;
      assert.equal(seen.cameraLine, expected, `camera line ${where}`);
      assert.equal(seen.cameraPush, expected, `camera push ${where}`);
      assert.deepEqual(sorted(seen.store), sorted(wanted), `store ${where}`);
      assert.deepEqual(seen.section4, wanted.slice(0, 1), `section 4 ${where}`);
      if (normalisePlate(raw) === "") {
        // A blank search is no filter: the API lists every stay.
        assert.deepEqual(sorted(seen.api), sorted([...rig.stays.values()]), `api ${where}`);
        // A camera refuses a blank field (a garbled line), it is no read at all.
        assert.equal(lineRead, undefined, `camera line ${where}`);
        assert.equal(pushRead, undefined, `camera push ${where}`);
      } else {
        assert.deepEqual(sorted(seen.api), sorted(wanted), `api ${where}`);
        // A marker is a read of a car without a plate, not a refused line.
        assert.ok(lineRead && pushRead, `both camera paths deliver a read ${where}`);
        assert.equal(lineRead.noPlate === true, expected === "", `camera line noPlate ${where}`);
        assert.equal(pushRead.noPlate === true, expected === "", `camera push noPlate ${where}`);
      }
    }
  });
});

/**
 * Texts made of what plates are made of, what cameras and people add to them, and the markers.
 * No "|": in a push it joins several plates of one vehicle (three-region cars), so a push and a
 * line differ there by design.
 */
const plateText = fc
  .array(
    fc.oneof(
      fc.constantFrom(..."粤京沪港学无ABDEZadz0189ＡＢｂ１２ ·-_./\u3000\u30FB"),
      fc.constantFrom("_无_", "无牌", "无车牌", "未识别", "NONE", "unknown", "粤B12345", "京AD12345", "ES16V2A"),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(""));

test("normalising is idempotent and every entry point equals the core's normaliser (property)", async () => {
  fc.assert(
    fc.property(plateText, (raw) => {
      const once = normalisePlate(raw);
      assert.equal(normalisePlate(once), once);
      assert.equal(plateKey(plateKey(raw)), plateKey(raw));
      assert.equal(plateKey(once), plateKey(raw));
    }),
    { seed: 11, numRuns: 2000 },
  );
  await withRig(async (rig) => {
    await fc.assert(
      fc.asyncProperty(plateText, async (raw) => {
        const { seen, lineRead, pushRead } = await throughEveryEntryPoint(rig, raw);
        const checked = readPlate(raw);
        for (const [path, read] of [
          ["camera line", lineRead],
          ["camera push", pushRead],
        ] as const) {
          if (!checked.ok) assert.equal(read, undefined, `${path} refuses ${JSON.stringify(raw)}`);
          else if (checked.noPlate) assert.ok(read?.noPlate === true && isNoPlate(normalisePlate(raw)), `${path} ${JSON.stringify(raw)}`);
          else assert.equal(read?.plate, normalisePlate(raw), `${path} ${JSON.stringify(raw)}`);
        }
        const key = plateKey(raw);
        const wanted = staysOf(rig, key);
        assert.deepEqual(sorted(seen.store), sorted(wanted), `store ${JSON.stringify(raw)}`);
        assert.deepEqual(seen.section4, wanted.slice(0, 1), `section 4 ${JSON.stringify(raw)}`);
        const apiWanted =
          normalisePlate(raw) === ""
            ? [...rig.stays.values()]
            : [...rig.stays].filter(([plate]) => (key === "" ? plateKey(plate) === "" : plateKey(plate).includes(key))).map(([, r]) => r);
        assert.deepEqual(sorted(seen.api), sorted(apiWanted), `api ${JSON.stringify(raw)}`);
      }),
      { seed: 12, numRuns: fuzzRuns },
    );
  });
});
