import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { FakeClock } from "./fake-clock.js";
import type { BackoffPolicy } from "../../src/kernel/backoff.js";
import { Outbox, type EnqueueInput, type OutboxEntry, type OutboxOptions, type SendOptions, type SendResult } from "../../src/outbox/outbox.js";
import { freshDir } from "./store-fixtures.js";

/**
 * An outbox on a fake clock over real files in a fresh temp dir, with a scripted sender: the
 * test decides each send's outcome (`respond`) and reads what was sent, and when (`sent`).
 */

export const POLICY = { baseMs: 1000, capMs: 60_000, minMs: 100 } satisfies BackoffPolicy;

export interface OutboxHarness {
  outbox: Outbox;
  clock: FakeClock;
  dir: string;
  sent: Array<{ key: string; atMs: number }>;
  /** Decides each send's outcome (`options.signal` aborts when the outbox stops). */
  respond: (entry: Readonly<OutboxEntry>, options: SendOptions) => SendResult | Promise<SendResult>;
  restart: (o?: Partial<OutboxOptions>) => Promise<Outbox>;
}

export async function withOutbox(run: (h: OutboxHarness) => Promise<void>, options: Partial<OutboxOptions> = {}): Promise<void> {
  const { dir, cleanup } = await freshDir("lk-outbox-");
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 8));
  const opened: Outbox[] = [];
  const h = {} as OutboxHarness;
  h.clock = clock;
  h.dir = dir;
  h.sent = [];
  h.respond = () => ({ ok: true });
  const make = async (o: Partial<OutboxOptions> = {}): Promise<Outbox> => {
    const outbox = new Outbox({
      dir,
      clock,
      random: () => 0.5,
      backoff: POLICY,
      sender: async (entry, sendOptions) => {
        h.sent.push({ key: entry.key, atMs: clock.now() });
        return h.respond(entry, sendOptions);
      },
      ...options,
      ...o,
    });
    await outbox.start();
    opened.push(outbox);
    return outbox;
  };
  h.restart = async (o) => {
    for (const ob of opened) await ob.stop();
    h.outbox = await make(o);
    return h.outbox;
  };
  try {
    h.outbox = await make();
    await run(h);
  } finally {
    for (const ob of opened) await ob.stop();
    await cleanup();
  }
}

/** Advances fake time in steps, letting real I/O (journal appends) settle between them. */
export async function runFor(h: OutboxHarness, totalMs: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) {
    await h.clock.advance(stepMs);
    await h.outbox.whenIdle();
  }
}

export const enter = (n: number | string): EnqueueInput => ({
  recordNo: `R${n}`,
  kind: "enter",
  service: "enterNotify",
  biz: { recordNo: `R${n}`, enterTime: "2026-06-01 16:00:00" },
});
export const leave = (n: number | string): EnqueueInput => ({
  recordNo: `R${n}`,
  kind: "leave",
  service: "leaveNotify",
  biz: { recordNo: `R${n}`, enterTime: "2026-06-01 16:00:00", leaveTime: "2026-06-01 17:00:00" },
});

/** The platform's answers as the platform sender maps them. */
export const busy = (code = 0, platformMsg = "平台繁忙"): SendResult => ({ ok: false, retry: "refused", code, platformMsg, reason: `code ${code}: ${platformMsg}` });
export const down: SendResult = { ok: false, retry: "transient", reason: "refused ECONNREFUSED" };

/** The journal once it holds a line matching `pattern` (appends that need not be durable land a little later). */
export async function journalMatching(h: OutboxHarness, pattern: RegExp, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(join(h.dir, "outbox.journal"), "utf8");
    if (pattern.test(text) || Date.now() > deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
