import { Writable } from "node:stream";
import { pino } from "pino";
import { redactedPaths } from "../../src/kernel/log.js";
import type { EnterNotifyBiz } from "../../src/platform/section3.js";

/** An entry report as the platform tests push it. */
export const sampleEnter: EnterNotifyBiz = {
  parkCode: "TEST/1P1",
  recordNo: "in1_20231114200000000",
  plateNum: "粤B12345",
  plateColor: 0,
  carType: 9,
  carSubType: 91,
  enterTime: "2023-11-14 20:00:00",
  inChannelid: "1",
};

/** A logger (with the app's redaction) whose lines the test can read. */
export function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: pino({ level: "debug", redact: { paths: redactedPaths, censor: "HIDDEN" } }, stream), lines };
}
