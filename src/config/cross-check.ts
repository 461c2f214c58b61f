import type { ConfigProblem } from "./load.js";
import { isLoopbackHost } from "../api/http-pipeline.js";

/**
 * Checks that span several parts of the config (pin conflicts, references between sections).
 * Runs on the raw document even when the schema found mistakes elsewhere, so a file with ten
 * mistakes reports all ten at once; every access is defensive for that reason.
 */
export function crossCheckConfig(raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const doc = asRecord(raw);
  if (!doc) return problems;
  const serial = asRecord(doc.serial) ?? {};
  const lanes = Array.isArray(doc.lanes) ? doc.lanes : [];
  const laneIds = new Map<string, number>();
  const usedLines = new Map<number, string>();

  lanes.forEach((laneRaw, index) => {
    const lane = asRecord(laneRaw);
    if (!lane) return;
    const at = `lanes[${index}]`;
    if (typeof lane.id === "string") {
      const first = laneIds.get(lane.id);
      if (first !== undefined) problems.push({ path: `${at}.id`, message: `duplicate lane id "${lane.id}" (also lanes[${first}])` });
      else laneIds.set(lane.id, index);
    }
    for (const group of ["inputs", "outputs"] as const) {
      const lines = asRecord(lane[group]) ?? {};
      for (const [name, specRaw] of Object.entries(lines)) {
        const line = asRecord(specRaw)?.line;
        if (typeof line !== "number") continue;
        const here = `${at}.${group}.${name}`;
        const other = usedLines.get(line);
        if (other) problems.push({ path: `${here}.line`, message: `GPIO line ${line} is already used by ${other}` });
        else usedLines.set(line, here);
      }
    }
    const inputs = asRecord(lane.inputs);
    const outputs = asRecord(lane.outputs);
    if (inputs) {
      for (const required of ["loopA", "loopB"]) {
        if (!(required in inputs)) problems.push({ path: `${at}.inputs.${required}`, message: `input ${required} is required` });
      }
      if (lane.direction === "in" && "cashConfirm" in inputs) problems.push({ path: `${at}.inputs.cashConfirm`, message: "cashConfirm is only for exit lanes" });
    }
    if (outputs && !("relayOpen" in outputs)) problems.push({ path: `${at}.outputs.relayOpen`, message: "output relayOpen is required" });
    for (const kind of ["camera", "scanner", "display"] as const) {
      const name = lane[kind];
      if (typeof name !== "string" || (kind === "camera" && name === "http")) continue;
      const device = asRecord(serial[name]);
      if (!device) problems.push({ path: `${at}.${kind}`, message: `no serial device named "${name}"` });
      else if (typeof device.kind === "string" && device.kind !== kind)
        problems.push({ path: `${at}.${kind}`, message: `serial device "${name}" is a ${device.kind}, not a ${kind}` });
    }
    const timers = asRecord(lane.timers);
    if (timers && typeof timers.travelTimeoutMs === "number" && timers.travelTimeoutMs <= (typeof timers.travelTimeMs === "number" ? timers.travelTimeMs : 3000)) {
      problems.push({ path: `${at}.timers.travelTimeoutMs`, message: "must be longer than travelTimeMs" });
    }
  });

  const fees = asRecord(doc.fees);
  const tariffs = asRecord(fees?.tariffs);
  if (fees && typeof fees.tariff === "string" && tariffs && !(fees.tariff in tariffs)) {
    problems.push({ path: "fees.tariff", message: `no tariff named "${fees.tariff}" in fees.tariffs` });
  }

  // A client certificate is useless without its key and the other way round.
  for (const section of ["platform", "mqtt"] as const) {
    const link = asRecord(doc[section]);
    if (!link) continue;
    const hasCert = typeof link.certFile === "string";
    const hasKey = typeof link.keyFile === "string";
    if (hasCert !== hasKey)
      problems.push({ path: `${section}.${hasCert ? "keyFile" : "certFile"}`, message: `${section}.certFile and ${section}.keyFile come as a pair; this one is missing` });
  }

  // Lot sharing needs a broker: its own (lot.share.mqtt) or the box's (mqtt).
  const share = asRecord(asRecord(doc.lot)?.share);
  if (share?.enabled === true && !asRecord(share.mqtt) && !asRecord(doc.mqtt)) {
    problems.push({ path: "lot.share.mqtt", message: "lot sharing is enabled but no broker is configured: add lot.share.mqtt or an mqtt section" });
  }

  // The camera push is open to the network only with a key (http-push.ts): a box whose API
  // listens beyond loopback for cameras on the LAN must have one, or every push is refused.
  const api = asRecord(doc.api);
  const host = typeof api?.host === "string" ? api.host : "127.0.0.1";
  const cameraKey = api?.cameraKey;
  const pushLanes = lanes
    .map((lane) => asRecord(lane))
    .filter((lane) => lane?.camera === "http")
    .map((lane) => String(lane?.id));
  if (!isLoopbackHost(host) && pushLanes.length > 0) {
    const where = `api.host ${host} is reachable from the network and lanes ${pushLanes.join(", ")} take camera pushes`;
    if (typeof cameraKey !== "string" || cameraKey.trim() === "") {
      problems.push({ path: "api.cameraKey", message: `${where}: set a camera key (16 or more characters), or bind the API to 127.0.0.1` });
    } else if (cameraKey.length < 16) {
      problems.push({ path: "api.cameraKey", message: `${where}: the camera key must be at least 16 characters so it is not guessable` });
    }
  }

  const serialPaths = new Map<string, string>();
  for (const [name, deviceRaw] of Object.entries(serial)) {
    const path = asRecord(deviceRaw)?.path;
    if (typeof path !== "string") continue;
    const other = serialPaths.get(path);
    if (other) problems.push({ path: `serial.${name}.path`, message: `${path} is already used by serial.${other}` });
    else serialPaths.set(path, name);
  }
  return problems;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
