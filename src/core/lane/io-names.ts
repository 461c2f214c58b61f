/**
 * The logical names of a lane's inputs and outputs. The lane machines step on them and the
 * config maps each to a GPIO line, so they live here and the config schema takes them from the
 * core (never the other way round: the core imports nothing outside itself).
 */
export const inputNames = ["loopA", "loopB", "barrierOpened", "barrierClosed", "cashConfirm", "manualOpen"] as const;
export const outputNames = ["relayOpen", "relayClose", "relayStop"] as const;
export type InputName = (typeof inputNames)[number];
export type OutputName = (typeof outputNames)[number];
