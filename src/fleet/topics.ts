/**
 * The typed topic map of the fleet link (docs/mqtt.md §2). Every topic lives under
 * `<root>/<deviceId>/`; this file is the only place that spells a topic string, so a backend
 * developer can read the whole contract here and in payloads.ts.
 */

/** Upstream topics (box → backend) and whether the broker keeps the last one. */
export const upTopics = {
  status: { retained: true },
  info: { retained: true },
  health: { retained: false },
  laneState: { retained: true },
  event: { retained: false },
  commandResult: { retained: false },
  configReported: { retained: true },
  jobStatus: { retained: false },
  platformResponse: { retained: false },
} as const;

/** A topic level we build from a name: no separators, no wildcards, no NUL (MQTT 3.1.1 §4.7). */
export const topicLevelPattern = /^[A-Za-z0-9_.:-]{1,64}$/;

export function isTopicLevel(value: string): boolean {
  return topicLevelPattern.test(value);
}

export interface FleetTopics {
  /** `<root>/<deviceId>`, without a trailing slash. */
  readonly base: string;
  status(): string;
  info(): string;
  health(): string;
  laneState(laneId: string): string;
  event(type: string): string;
  command(name: string): string;
  commandResult(name: string): string;
  configDesired(): string;
  configReported(): string;
  job(jobId: string): string;
  jobStatus(jobId: string): string;
  platformRequest(): string;
  platformResponse(): string;
  /** The filters the link subscribes to after every connect. */
  subscriptions(): string[];
}

export function fleetTopics(root: string, deviceId: string): FleetTopics {
  const base = `${root.replace(/\/+$/, "")}/${deviceId}`;
  const level = (what: string, value: string): string => {
    if (!isTopicLevel(value)) throw new RangeError(`${what} ${JSON.stringify(value)} is not a valid topic level`);
    return value;
  };
  return {
    base,
    status: () => `${base}/status`,
    info: () => `${base}/info`,
    health: () => `${base}/health`,
    laneState: (laneId) => `${base}/state/${level("lane id", laneId)}`,
    event: (type) => `${base}/evt/${level("event type", type)}`,
    command: (name) => `${base}/cmd/${level("command name", name)}`,
    commandResult: (name) => `${base}/res/${level("command name", name)}`,
    configDesired: () => `${base}/cfg/desired`,
    configReported: () => `${base}/cfg/reported`,
    job: (jobId) => `${base}/jobs/${level("job id", jobId)}`,
    jobStatus: (jobId) => `${base}/jobs/${level("job id", jobId)}/status`,
    platformRequest: () => `${base}/platform/req`,
    platformResponse: () => `${base}/platform/res`,
    subscriptions: () => inboundKinds.map((kind) => `${base}/${inboundFilters[kind]}`),
  };
}

/** What a downstream topic is, or null for one the link does not handle. */
export type InboundTopic = { kind: "command"; name: string } | { kind: "configDesired" } | { kind: "job"; jobId: string } | { kind: "platformRequest" };

/**
 * The subscription filter of each downstream topic kind, below the base. `jobs/+` matches
 * `jobs/<id>` but not our own `jobs/<id>/status`, so a 3.1.1 broker (which echoes a client's
 * own publishes) never hands our status back to us.
 */
const inboundFilters: Record<InboundTopic["kind"], string> = {
  command: "cmd/+",
  configDesired: "cfg/desired",
  job: "jobs/+",
  platformRequest: "platform/req",
};
const inboundKinds = Object.keys(inboundFilters) as Array<InboundTopic["kind"]>;

/** The filter an extension subscribes to for its kind of downstream topic. */
export function inboundFilter(topics: FleetTopics, kind: InboundTopic["kind"]): string {
  return `${topics.base}/${inboundFilters[kind]}`;
}

export function parseInboundTopic(topics: FleetTopics, topic: string): InboundTopic | null {
  const prefix = `${topics.base}/`;
  if (!topic.startsWith(prefix)) return null;
  const rest = topic.slice(prefix.length).split("/");
  const [first, second] = rest;
  if (rest.length === 2 && first === "cmd" && second !== undefined && second !== "") return { kind: "command", name: second };
  if (rest.length === 2 && first === "cfg" && second === "desired") return { kind: "configDesired" };
  if (rest.length === 2 && first === "jobs" && second !== undefined && second !== "") return { kind: "job", jobId: second };
  if (rest.length === 2 && first === "platform" && second === "req") return { kind: "platformRequest" };
  return null;
}
