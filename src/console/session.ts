import { randomBytes } from "node:crypto";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import { readTlsFiles, untrustedCertificateCode } from "../kernel/tls.js";
import { redactUrl } from "../kernel/redact-url.js";
import { CommandFailure, UsageError, type OptionSpecs } from "../cli/command.js";
import { fleetTopics, type FleetTopics } from "../fleet/topics.js";

/**
 * The operator console's connection to the fleet broker, with the operator's own credentials
 * and TLS (never a box's). One mqtt.js client, MQTT 5, clean session: the console keeps no
 * broker state between runs; what it must remember (a rollout) lives in its own state file.
 */

/** Options every `fleet` subcommand takes (node:util parseArgs shape, with their help). */
export const brokerArgOptions = {
  url: { type: "string", value: "<mqtt[s]://host:port>", describe: "the fleet broker", defaultText: "$LANEKEEPER_FLEET_URL" },
  username: { type: "string", value: "<name>", describe: "the operator's broker user", defaultText: "$LANEKEEPER_FLEET_USERNAME" },
  password: { type: "string", value: "<password>", describe: "its password (visible in ps: prefer the variable)", defaultText: "$LANEKEEPER_FLEET_PASSWORD" },
  ca: { type: "string", value: "<pem>", describe: "CA that signed the broker's certificate" },
  cert: { type: "string", value: "<pem>", describe: "the operator's client certificate" },
  key: { type: "string", value: "<pem>", describe: "its private key" },
  root: { type: "string", value: "<topicRoot>", describe: "topic prefix of the fleet", defaultText: "$LANEKEEPER_FLEET_ROOT or lanekeeper/v1" },
  insecure: { type: "boolean", describe: "skip certificate checks (a lab broker only)" },
} as const satisfies OptionSpecs;

export interface BrokerSettings {
  url: string;
  root: string;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecure: boolean;
}

interface BrokerArgValues {
  url?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  root?: string | undefined;
  insecure?: boolean | undefined;
}

/** Command line first, then the environment (a password on the command line shows in `ps`). */
export function brokerSettings(values: BrokerArgValues, env: NodeJS.ProcessEnv = process.env): BrokerSettings {
  const url = values.url ?? env.LANEKEEPER_FLEET_URL;
  if (!url) throw new UsageError("name the broker with --url or LANEKEEPER_FLEET_URL");
  if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(url)) throw new UsageError(`--url ${redactUrl(url)}: mqtt://, mqtts://, ws:// or wss://`);
  const root = (values.root ?? env.LANEKEEPER_FLEET_ROOT ?? "lanekeeper/v1").replace(/\/+$/, "");
  if (/[+#]/.test(root) || root === "") throw new UsageError(`--root ${JSON.stringify(root)}: a topic prefix without + or #`);
  const settings: BrokerSettings = { url, root, insecure: values.insecure ?? false };
  const username = values.username ?? env.LANEKEEPER_FLEET_USERNAME;
  const password = values.password ?? env.LANEKEEPER_FLEET_PASSWORD;
  if (username !== undefined) settings.username = username;
  if (password !== undefined) settings.password = password;
  if (values.ca !== undefined) settings.caFile = values.ca;
  if (values.cert !== undefined) settings.certFile = values.cert;
  if (values.key !== undefined) settings.keyFile = values.key;
  return settings;
}

export interface ConsoleMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

export class BrokerSession {
  private readonly listeners = new Set<(message: ConsoleMessage) => void>();

  private constructor(
    readonly client: MqttClient,
    readonly settings: BrokerSettings,
  ) {
    client.on("message", (topic, payload, packet) => {
      const message = { topic, payload, retain: packet.retain };
      for (const listener of this.listeners) listener(message);
    });
  }

  /** Connects or throws with the broker's reason (bad credentials, TLS, unreachable). */
  static async open(settings: BrokerSettings, options: { connectTimeoutMs?: number } = {}): Promise<BrokerSession> {
    const tls = readTlsFiles("fleet", { caFile: settings.caFile, certFile: settings.certFile, keyFile: settings.keyFile });
    if (tls.problems.length > 0) throw new UsageError(tls.problems.join("; "));
    const clientOptions: IClientOptions = {
      clientId: `lanekeeper-console-${randomBytes(6).toString("hex")}`,
      protocolVersion: 5,
      clean: true,
      // The console reconnects by itself during a long watch or rollout; subscriptions are
      // made again by mqtt.js (resubscribe), and retained presence arrives again with them.
      reconnectPeriod: 1000,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      ...(settings.username !== undefined ? { username: settings.username } : {}),
      ...(settings.password !== undefined ? { password: settings.password } : {}),
      ...(tls.connect ?? {}),
      ...(settings.insecure ? { rejectUnauthorized: false } : {}),
    };
    const client = connect(settings.url, clientOptions);
    const session = new BrokerSession(client, settings);
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => {
        client.end(true);
        const untrusted = untrustedCertificateCode(error);
        const hint = untrusted
          ? ` (${untrusted}: the broker's certificate does not chain to ${settings.caFile ? `--ca ${settings.caFile}` : "a system CA; name its CA with --ca"})`
          : "";
        reject(new CommandFailure("E_CONSOLE_CONNECT", `cannot connect to ${redactUrl(settings.url)}: ${error.message}${hint}`));
      };
      const timer = setTimeout(() => fail(new Error(`no answer within ${clientOptions.connectTimeout} ms`)), (clientOptions.connectTimeout ?? 10_000) + 500);
      client.once("connect", () => {
        clearTimeout(timer);
        client.removeListener("error", fail);
        resolve();
      });
      client.once("error", (error) => {
        clearTimeout(timer);
        fail(error);
      });
    });
    // After the first connect an error is a reconnect matter, not a crash.
    client.on("error", () => undefined);
    return session;
  }

  topics(deviceId: string): FleetTopics {
    return fleetTopics(this.settings.root, deviceId);
  }

  /** `<root>/+/<suffix>`: the same topic of every box. */
  everyBox(suffix: string): string {
    return `${this.settings.root}/+/${suffix}`;
  }

  onMessage(listener: (message: ConsoleMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async subscribe(filters: string[]): Promise<void> {
    const granted = await this.client.subscribeAsync(filters, { qos: 1 });
    const refused = granted.filter((g) => g.qos > 2);
    if (refused.length > 0) throw new Error(`the broker refused the subscription to ${refused.map((g) => g.topic).join(", ")} (ACL?)`);
  }

  async publish(topic: string, payload: object | string, options: { retain?: boolean } = {}): Promise<void> {
    const body = typeof payload === "string" ? payload : JSON.stringify(payload);
    const packet = await this.client.publishAsync(topic, body, { qos: 1, retain: options.retain ?? false });
    const reason = (packet as { reasonCode?: number } | undefined)?.reasonCode;
    // MQTT 5 PUBACK reason codes ≥ 0x80 are refusals (0x87 "not authorized").
    if (reason !== undefined && reason >= 0x80) throw new Error(`the broker refused the publish on ${topic} (reason code 0x${reason.toString(16)})`);
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

/** Parses `<root>/<deviceId>/<rest>`; null for a topic outside the root. */
export function splitBoxTopic(root: string, topic: string): { deviceId: string; rest: string } | null {
  const prefix = `${root}/`;
  if (!topic.startsWith(prefix)) return null;
  const tail = topic.slice(prefix.length);
  const slash = tail.indexOf("/");
  if (slash <= 0) return null;
  return { deviceId: tail.slice(0, slash), rest: tail.slice(slash + 1) };
}
