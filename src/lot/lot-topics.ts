/*
 * The lot's topics on the broker (docs/mqtt.md "Sharing one lot between boxes"), all under
 * `<topicRoot>/lot/<parkCode>/`. A park code, device id or record number is one topic level:
 * characters that MQTT or a path would read (`/`, `+`, `#`, `%`, spaces, ...) are
 * percent-encoded, so "TEST/1P1" is the level "TEST%2F1P1".
 */

export interface LotTopics {
  /** `<topicRoot>/lot/<parkCode>` */
  readonly base: string;
  box(deviceId: string): string;
  stay(recordNo: string): string;
  readonly boxesFilter: string;
  readonly staysFilter: string;
  /** What an inbound topic names, or undefined when it is not one of the lot's. */
  parse(topic: string): { kind: "box"; deviceId: string } | { kind: "stay"; recordNo: string } | undefined;
}

/** One topic level: every character but letters, digits, `-`, `_` and `.` percent-encoded. */
export function topicLevel(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function fromLevel(level: string): string | undefined {
  try {
    return decodeURIComponent(level);
  } catch {
    // Not percent-encoding this box would have made: not a topic of the lot.
    return undefined;
  }
}

export function lotTopics(topicRoot: string, parkCode: string): LotTopics {
  const base = `${topicRoot}/lot/${topicLevel(parkCode)}`;
  return {
    base,
    box: (deviceId) => `${base}/boxes/${topicLevel(deviceId)}`,
    stay: (recordNo) => `${base}/stays/${topicLevel(recordNo)}`,
    boxesFilter: `${base}/boxes/+`,
    staysFilter: `${base}/stays/+`,
    parse(topic) {
      if (!topic.startsWith(`${base}/`)) return undefined;
      const rest = topic.slice(base.length + 1).split("/");
      if (rest.length !== 2 || rest[1] === "") return undefined;
      const value = fromLevel(rest[1]!);
      if (value === undefined) return undefined;
      if (rest[0] === "boxes") return { kind: "box", deviceId: value };
      if (rest[0] === "stays") return { kind: "stay", recordNo: value };
      return undefined;
    },
  };
}
