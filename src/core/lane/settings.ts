/**
 * Lane settings from the validated config (src/config/schema.ts). The import is type-only, so
 * the core stays free of zod and of any IO at run time.
 */
import type { LaneConfig } from "../../config/schema.js";
import type { LaneSettings } from "./lane.js";

export function laneSettingsFromConfig(lane: LaneConfig): LaneSettings {
  return {
    laneId: lane.id,
    direction: lane.direction,
    detector: { ...lane.detector },
    barrier: {
      relayPulseMs: lane.relayPulseMs,
      travelTimeMs: lane.timers.travelTimeMs,
      travelTimeoutMs: lane.timers.travelTimeoutMs,
      recloseMs: lane.timers.recloseMs,
      limitSwitches: { opened: lane.inputs.barrierOpened !== undefined, closed: lane.inputs.barrierClosed !== undefined },
    },
    plateWindowMs: lane.timers.plateWindowMs,
    dedupeWindowMs: lane.timers.dedupeWindowMs,
    backoutGraceMs: lane.timers.backoutGraceMs,
  };
}
