import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { systemClock, type Clock } from "../../src/kernel/clock.js";

/**
 * A TCP path from one box to the lot's broker that a test cuts and heals: a partition that is
 * real to the box (its connection drops at once, the broker publishes its will, reconnects are
 * refused) without a network namespace. `cut()` destroys every connection through it and drops
 * new ones until `heal()`.
 */
export class CuttablePath {
  private readonly sockets = new Set<Socket>();
  private cutNow = false;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async open(brokerPort: number): Promise<CuttablePath> {
    const holder: { path?: CuttablePath } = {};
    const server = createServer((client) => {
      if (holder.path) holder.path.accept(client, brokerPort);
      else client.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    holder.path = new CuttablePath(server, `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return holder.path;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  cut(): void {
    this.cutNow = true;
    for (const socket of this.sockets) socket.destroy();
  }

  heal(): void {
    this.cutNow = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, brokerPort: number): void {
    if (this.cutNow) {
      client.destroy();
      return;
    }
    const upstream = connect(brokerPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }
}

/** The lanes of the lot's gate `index` (1-based): `in<n>` and `out<n>`, channels 2n−1 and 2n. */
export function gateLanes(raw: Record<string, any>, index: number): void {
  const [entry, exit] = raw.lanes as [Record<string, unknown>, Record<string, unknown>];
  Object.assign(entry, { id: `in${index}`, channelId: String(2 * index - 1) });
  Object.assign(exit, { id: `out${index}`, channelId: String(2 * index) });
}

/** A box clock `offsetMs` off the true time (its timers run true): boxes whose clocks disagree. */
export function skewedClock(offsetMs: number): Clock {
  return { ...systemClock, now: () => Date.now() + offsetMs };
}
