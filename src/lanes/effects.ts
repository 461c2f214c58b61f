/**
 * The lanes' effects on the world besides the store and the platform: the lane boards, the
 * event bus (and the history archive of its events), the lane machines' decisions, timers and
 * tracked tasks. Each is silenced once the lanes stop.
 */
import type { TimerHandle } from "../kernel/clock.js";
import type { LaneMessage } from "../io/display/messages.js";
import type { LaneDecision } from "../core/lane/index.js";
import { parseWireTime } from "../platform/wire.js";
import type { LanesState } from "./lane-state.js";

/** Events that are too frequent or too minor for the history segments. */
const notArchived = new Set(["presence", "input-ignored", "plate-ignored", "duplicate-read", "close-deferred"]);

export function show(lanes: LanesState, laneId: string, message: LaneMessage): void {
  // The display links close with the stop: nothing is written to them after it.
  if (lanes.stopped) return;
  const display = lanes.deps.displays.get(laneId);
  const view = lanes.views.get(laneId);
  if (view) view.display = { kind: message.kind, lines: [] };
  if (!display) return;
  void display.show(message).then(() => {
    // What the board was last sent, real or simulated (no copy of the simulator's history).
    const last = display.status().lastShown;
    if (view && last) view.display = { kind: message.kind, lines: last.lines };
    lanes.deps.bus.changed();
  });
}

export function emit(lanes: LanesState, event: { type: string; laneId?: string; [key: string]: unknown }): void {
  if (lanes.quiet) return;
  const full = { ...event, atMs: typeof event.atMs === "number" ? event.atMs : lanes.deps.clock.now() };
  lanes.deps.bus.emit(full);
  if (notArchived.has(event.type)) return;
  // Archived two turns of the event loop later, in order (the history line is not durable
  // anyway): a decision's durable write and its platform call go first, and the call is
  // written to its socket from an immediate queued during the decision (billAtExit).
  lanes.toArchive.push(full);
  lanes.archiveTimer ??= setImmediate(() => (lanes.archiveTimer = setImmediate(() => archive(lanes))));
}

export function archive(lanes: LanesState): void {
  if (lanes.archiveTimer) clearImmediate(lanes.archiveTimer);
  lanes.archiveTimer = undefined;
  for (const event of lanes.toArchive.splice(0)) {
    void lanes.deps.store.appendEvent(event).catch((error: unknown) => lanes.log.warn({ err: error }, "event not archived"));
  }
}

/** The lane machine's answer to its decision request. */
export function feedDecision(lanes: LanesState, request: { laneId: string; txId: string }, decision: LaneDecision): void {
  lanes.runners.get(request.laneId)?.feed({ kind: "decision", txId: request.txId, decision, atMs: lanes.deps.clock.now() });
}

/** A timer of the lanes: cleared at stop, and never fires after it. */
export function after(lanes: LanesState, ms: number, fn: () => void): TimerHandle | undefined {
  if (lanes.stopped) return undefined;
  const handle = lanes.deps.clock.setTimeout(() => {
    lanes.timers.delete(handle);
    if (!lanes.stopped) fn();
  }, ms);
  lanes.timers.add(handle);
  return handle;
}

export function cancelTimer(lanes: LanesState, handle: TimerHandle): void {
  lanes.deps.clock.clearTimeout(handle);
  lanes.timers.delete(handle);
}

/** A task of the lanes: stop() waits for it briefly, and its failure is logged, not thrown. */
export function track<T>(lanes: LanesState, promise: Promise<T>): Promise<T> {
  lanes.inFlight.add(promise);
  void promise
    .catch((error: unknown) => {
      if (!lanes.quiet) lanes.log.error({ err: error }, "lane task failed");
    })
    .finally(() => lanes.inFlight.delete(promise));
  return promise;
}

export function parseTime(lanes: LanesState, text: string): number | null {
  return parseWireTime(text, lanes.deps.config.lot.timeZone) ?? null;
}

/** The machine's camelCase event type as the bus names it (`backedOut` → `backed-out`). */
export function kebab(type: string): string {
  return type.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
