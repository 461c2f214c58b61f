// Platform protocol figures: signer throughput, envelope parse+verify,
// and the client's local overhead over a raw undici POST to the same emulator on loopback
// (budget: p99 ≤ 2 ms). Bounded loops on 127.0.0.1 only.
import { Agent, request } from "undici";
import { systemClock } from "../src/kernel/clock.js";
import { silentLogger } from "../src/kernel/log.js";
import { createPlatformClient } from "../src/platform/client.js";
import { platformConfigSchema } from "../src/platform/config.js";
import { demoCredentials, startEmulator } from "../src/platform/emulator/emulator.js";
import { encodeEnvelope, parseEnvelope, timestampText, verifyEnvelope } from "../src/platform/envelope.js";
import type { PreLeaveNotifyBiz } from "../src/platform/section3.js";
import { percentile, report, round } from "./lib.js";

const bill: PreLeaveNotifyBiz = {
  parkCode: "TEST/1P1",
  recordNo: "IN20231114200000001",
  plateNum: "粤B12345",
  carType: 9,
  carSubType: 91,
  enterTime: "2023-11-14 20:00:00",
  leaveTime: "2023-11-14 22:13:20",
  payableFee: 500,
  discountFee: 100,
  paidFee: 400,
  outChannelid: "2",
  sweepCode: 0,
  plateId: "EX20231114221320001",
};

// ---- signer / codec throughput ----
{
  const n = 20_000;
  const t0 = performance.now();
  let last = "";
  for (let i = 0; i < n; i++) last = encodeEnvelope({ ...demoCredentials, serviceName: "preLeaveNotify", timestamp: "1700000000", biz: { ...bill, paidFee: i } }).bodyText;
  const encodeMs = performance.now() - t0;
  report("platform-encode-sign", { perSecond: Math.round(n / (encodeMs / 1000)), usPerOp: round((encodeMs * 1000) / n, 2), n });
  const t1 = performance.now();
  for (let i = 0; i < n; i++) verifyEnvelope(parseEnvelope(last), { key: demoCredentials.key, nowMs: 1_700_000_000_000, windowS: 300 });
  const verifyMs = performance.now() - t1;
  report("platform-parse-verify", { perSecond: Math.round(n / (verifyMs / 1000)), usPerOp: round((verifyMs * 1000) / n, 2), n });
}

// ---- client overhead vs raw undici POST, same emulator, same body size ----
{
  const emulator = await startEmulator({ frictionlessPlates: [bill.plateNum] });
  const config = platformConfigSchema.parse({ baseUrl: emulator.url, ...demoCredentials, client: { connections: 1 } });
  const client = createPlatformClient({ config, clock: systemClock, log: silentLogger() });
  const raw = new Agent({ connections: 1 });
  const rounds = 2000;
  const warmup = 200;
  const clientSamples: number[] = [];
  const rawSamples: number[] = [];
  for (let i = 0; i < rounds + warmup; i++) {
    // Alternate so both see the same machine state.
    const a = performance.now();
    const result = await client.preLeaveNotify({ ...bill, plateId: `EX-c-${i}` });
    const b = performance.now();
    if (!result.ok) throw new Error(`client call failed: ${JSON.stringify(result)}`);
    const body = encodeEnvelope({ ...demoCredentials, serviceName: "preLeaveNotify", timestamp: timestampText(Date.now()), biz: { ...bill, plateId: `EX-r-${i}` } }).bodyText;
    const c = performance.now();
    const res = await request(emulator.url, { method: "POST", dispatcher: raw, headers: { "content-type": "application/json;charset=UTF-8" }, body });
    await res.body.text();
    const d = performance.now();
    if (i >= warmup) {
      clientSamples.push(b - a);
      rawSamples.push(d - c);
    }
  }
  const overhead = (p: number) => round(percentile(clientSamples, p) - percentile(rawSamples, p), 3);
  report("platform-client-overhead", {
    rounds,
    clientP50Ms: round(percentile(clientSamples, 50)),
    clientP99Ms: round(percentile(clientSamples, 99)),
    rawP50Ms: round(percentile(rawSamples, 50)),
    rawP99Ms: round(percentile(rawSamples, 99)),
    overheadP50Ms: overhead(50),
    overheadP99Ms: overhead(99),
    budgetP99Ms: 2,
    connections: emulator.connections(),
  });

  // Refused connection → classified failure (the cash-fallback trigger; budget 50 ms end to end).
  await emulator.setFaults({ refuse: true });
  const refused: number[] = [];
  for (let i = 0; i < 50; i++) {
    const result = await client.preLeaveNotify({ ...bill, plateId: `EX-x-${i}` });
    if (result.ok || result.kind !== "refused") throw new Error(`expected refused, got ${JSON.stringify(result)}`);
    refused.push(result.elapsedMs);
  }
  report("platform-refused-classified", { p50Ms: round(percentile(refused, 50)), p99Ms: round(percentile(refused, 99)), budgetMs: 50 });
  await client.close();
  await raw.close();
  await emulator.stop();
}
