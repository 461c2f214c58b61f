/**
 * The health gate a new version must pass before its update commits (docs/mqtt.md §7, systemd/README.md "Boot guard"):
 * lanes up, store loaded, and the platform or MQTT reachable as configured.
 */
export interface HealthResult {
  healthy: boolean;
  /** Why not, for the job status when the window runs out. */
  reason?: string;
}

export type HealthProbe = () => HealthResult | boolean | Promise<HealthResult | boolean>;

export type Check = () => boolean | Promise<boolean>;

export interface HealthChecks {
  lanesUp: Check;
  storeLoaded: Check;
  /** Absent when the platform link is disabled in the config. */
  platformReachable?: Check;
  /** Absent when MQTT is not configured. */
  mqttConnected?: Check;
  /** Which links must be up; "platform-or-mqtt" accepts either of those configured. */
  requires?: "platform-or-mqtt" | "platform" | "mqtt" | "local";
}

async function run(check: Check | undefined): Promise<boolean> {
  if (!check) return false;
  try {
    return await check();
  } catch {
    return false;
  }
}

export function createHealthProbe(checks: HealthChecks): () => Promise<HealthResult> {
  const requires = checks.requires ?? "platform-or-mqtt";
  return async () => {
    const problems: string[] = [];
    if (!(await run(checks.lanesUp))) problems.push("lanes not up");
    if (!(await run(checks.storeLoaded))) problems.push("store not loaded");
    const platform = checks.platformReachable ? await run(checks.platformReachable) : undefined;
    const mqtt = checks.mqttConnected ? await run(checks.mqttConnected) : undefined;
    if (requires === "platform" && platform !== true) problems.push(platform === undefined ? "platform link not configured" : "platform unreachable");
    if (requires === "mqtt" && mqtt !== true) problems.push(mqtt === undefined ? "mqtt not configured" : "mqtt not connected");
    if (requires === "platform-or-mqtt" && (platform !== undefined || mqtt !== undefined) && platform !== true && mqtt !== true) {
      problems.push([platform === false ? "platform unreachable" : "", mqtt === false ? "mqtt not connected" : ""].filter(Boolean).join(" and "));
    }
    return problems.length === 0 ? { healthy: true } : { healthy: false, reason: problems.join(", ") };
  };
}

export function normaliseHealth(result: HealthResult | boolean): HealthResult {
  return typeof result === "boolean" ? (result ? { healthy: true } : { healthy: false, reason: "health probe said no" }) : result;
}
