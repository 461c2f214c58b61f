/**
 * Lane settings from a lane's validated config. The core does not import the config layer (it
 * imports the core): `LaneSettingsSource` names only the fields read here, and the config's
 * `LaneConfig` fits it as is.
 */
import type { InputName } from "./io-names.js";
import type { LaneDirection } from "./lane-machine.js";
import type { LaneSettings } from "./lane.js";

export interface LaneSettingsSource {
  readonly id: string;
  readonly direction: LaneDirection;
  readonly detector: LaneSettings["detector"];
  readonly relayPulseMs: number;
  readonly timers: {
    readonly travelTimeMs: number;
    readonly travelTimeoutMs: number;
    readonly recloseMs: number;
    readonly plateWindowMs: number;
    readonly dedupeWindowMs: number;
    readonly backoutGraceMs: number;
  };
  /** Only whether a limit switch is wired matters here, not its line. */
  readonly inputs: Readonly<Partial<Record<InputName, unknown>>>;
}

export function laneSettingsFromConfig(lane: LaneSettingsSource): LaneSettings {
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
