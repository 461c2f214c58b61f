import { execFile } from "node:child_process";
import { randomInt } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Network namespaces for partition tests: each box runs in a namespace of its own with two
 * veth links to the test's namespace, a "site" link (the local API, the platform) and a "lot"
 * link (the lot's broker). Taking a lot link down cuts that box off from the lot for real —
 * its TCP connection to the broker stops carrying packets, with no close — while the test
 * still drives its lanes and reads its API over the site link.
 */
export interface BoxNamespace {
  readonly name: string;
  /** The box's address on its site link (bind the local API here). */
  readonly siteAddress: string;
  /** The test's end of the site link (the platform emulator listens on every address). */
  readonly siteGateway: string;
  /** The test's end of the lot link (the broker listens on every address). */
  readonly lotGateway: string;
  /** Runs a command inside the namespace: prefix for spawn. */
  readonly exec: string[];
  /** Takes the lot link down: the box is cut off from the broker and every other box. */
  cutLot(): Promise<void>;
  healLot(): Promise<void>;
}

export interface Namespaces {
  readonly boxes: BoxNamespace[];
  destroy(): Promise<void>;
}

const ip = async (...args: string[]): Promise<void> => {
  await run("ip", args);
};

/** Why namespaces cannot be made here (not root, no `ip`, a kernel without them), or undefined. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== "linux") return "network namespaces are Linux only";
  if (process.getuid?.() !== 0) return "network namespaces need root (run the suite as root, as CI does)";
  const probe = `lkprobe${randomInt(1e6)}`;
  try {
    await ip("netns", "add", probe);
    await ip("netns", "del", probe);
    return undefined;
  } catch (error) {
    return `\`ip netns\` does not work here: ${(error as Error).message.split("\n")[0]}`;
  }
}

/** `count` box namespaces with their links up; `destroy()` removes them (and their links). */
export async function createBoxNamespaces(count: number): Promise<Namespaces> {
  // A random second octet and name tag, so a leftover of a killed run never collides.
  const octet = randomInt(16, 250);
  const tag = randomInt(36 ** 3)
    .toString(36)
    .padStart(3, "0");
  const made: string[] = [];
  const boxes: BoxNamespace[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const name = `lk${tag}n${i}`;
      await ip("netns", "add", name);
      made.push(name);
      await ip("-n", name, "link", "set", "lo", "up");
      const link = async (kind: "s" | "l", subnet: string): Promise<string> => {
        const outside = `lk${tag}${kind}${i}o`;
        const inside = `lk${tag}${kind}${i}i`;
        await ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", name);
        await ip("addr", "add", `${subnet}.1/24`, "dev", outside);
        await ip("link", "set", outside, "up");
        await ip("-n", name, "addr", "add", `${subnet}.2/24`, "dev", inside);
        await ip("-n", name, "link", "set", inside, "up");
        return outside;
      };
      await link("s", `10.${octet}.${i}`);
      const lotLink = await link("l", `10.${octet}.${100 + i}`);
      boxes.push({
        name,
        siteAddress: `10.${octet}.${i}.2`,
        siteGateway: `10.${octet}.${i}.1`,
        lotGateway: `10.${octet}.${100 + i}.1`,
        exec: ["ip", "netns", "exec", name],
        cutLot: () => ip("link", "set", lotLink, "down"),
        healLot: () => ip("link", "set", lotLink, "up"),
      });
    }
  } catch (error) {
    for (const name of made) await ip("netns", "del", name).catch(() => undefined);
    throw error;
  }
  return {
    boxes,
    async destroy() {
      // Deleting a namespace deletes the veth ends inside it, and with them their peers.
      for (const name of made) await ip("netns", "del", name).catch(() => undefined);
    },
  };
}
