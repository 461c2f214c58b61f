import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type TlsOptions } from "node:tls";
import { Aedes, type AedesOptions } from "aedes";

export interface AedesHelperOptions {
  /** aedes' authenticate hook (username/password checks). */
  authenticate?: AedesOptions["authenticate"];
  /** Serve MQTT over TLS (mqtts://) with these options (key, cert, ca, requestCert, ...). */
  tls?: TlsOptions;
}

/**
 * An in-process MQTT 3.1.1 broker (aedes 1.x) on 127.0.0.1. `restart()` closes it and opens a
 * fresh one on the same port (in-memory persistence: retained messages are gone, as after a
 * real broker restart without persistence). `dropClient()` destroys a client's socket from
 * the broker side, which is an abrupt close: the broker publishes the client's will.
 */
export interface AedesBroker {
  readonly port: number;
  readonly url: string;
  broker: Aedes;
  /** Client ids connected now. */
  clientIds(): string[];
  dropClient(clientId: string): boolean;
  /** Closes the broker (clients see the connection go) but keeps the port for `up()`. */
  down(): Promise<void>;
  /** A fresh broker on the same port. */
  up(): Promise<void>;
  restart(options?: { downMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export async function startAedes(options: AedesHelperOptions = {}): Promise<AedesBroker> {
  let current = await open(0, options);
  let isUp = true;
  const port = (current.server.address() as AddressInfo).port;
  const handle: AedesBroker = {
    port,
    url: `${options.tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    broker: current.broker,
    clientIds: () => [...current.clients.keys()],
    dropClient(clientId) {
      const socket = current.clients.get(clientId);
      if (!socket) return false;
      socket.destroy();
      return true;
    },
    async down() {
      if (!isUp) return;
      isUp = false;
      await shut(current);
    },
    async up() {
      if (isUp) return;
      current = await open(port, options);
      isUp = true;
      handle.broker = current.broker;
    },
    async restart(options = {}) {
      await handle.down();
      if (options.downMs) await new Promise((resolve) => setTimeout(resolve, options.downMs));
      await handle.up();
    },
    close: () => handle.down(),
  };
  return handle;
}

interface Running {
  broker: Aedes;
  server: Server;
  sockets: Set<Socket>;
  clients: Map<string, Socket>;
}

async function open(port: number, options: AedesHelperOptions): Promise<Running> {
  const broker = await Aedes.createBroker({ heartbeatInterval: 3_600_000, ...(options.authenticate ? { authenticate: options.authenticate } : {}) });
  const sockets = new Set<Socket>();
  const clients = new Map<string, Socket>();
  const onSocket = (socket: Socket): void => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    broker.handle(socket);
  };
  const server: Server = options.tls ? createTlsServer(options.tls, onSocket) : createServer(onSocket);
  // A client that fails the TLS handshake must not crash the test process.
  server.on("tlsClientError", () => undefined);
  broker.on("client", (client) => clients.set(client.id, client.conn as Socket));
  broker.on("clientDisconnect", (client) => {
    if (clients.get(client.id) === client.conn) clients.delete(client.id);
  });
  // Errors of a client the test dropped on purpose are expected; keep them off stderr.
  broker.on("clientError", () => undefined);
  broker.on("connectionError", () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return { broker, server, sockets, clients };
}

async function shut(running: Running): Promise<void> {
  await new Promise<void>((resolve) => running.broker.close(() => resolve()));
  for (const socket of running.sockets) socket.destroy();
  await new Promise<void>((resolve) => running.server.close(() => resolve()));
}
