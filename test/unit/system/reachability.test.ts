import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { endpointFromUrl, tcpProbe } from "../../../src/system/reachability.js";
import { printable } from "../../../src/system/selftest.js";

test("endpointFromUrl: explicit ports, scheme defaults, IPv6 literals, garbage", () => {
  const rows: Array<[string, ReturnType<typeof endpointFromUrl>]> = [
    ["http://127.0.0.1:8090/", { host: "127.0.0.1", port: 8090 }],
    ["https://cloud.example.com/api", { host: "cloud.example.com", port: 443 }],
    ["http://cloud.example.com", { host: "cloud.example.com", port: 80 }],
    ["mqtt://broker.local", { host: "broker.local", port: 1883 }],
    ["mqtts://broker.local", { host: "broker.local", port: 8883 }],
    ["wss://broker.local/mqtt", { host: "broker.local", port: 443 }],
    ["tcp://[::1]:1884", { host: "::1", port: 1884 }],
    ["not a url", { error: '"not a url" is not a URL' }],
    ["gopher://x", { error: "no default port for gopher:// in gopher://x" }],
  ];
  for (const [url, expected] of rows) assert.deepEqual(endpointFromUrl(url), expected, url);
});

test("tcpProbe: a listener on loopback is reachable, a closed port is refused", async () => {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const open = await tcpProbe({ host: "127.0.0.1", port }, 2000);
  assert.equal(open.ok, true);
  await new Promise((resolve) => server.close(resolve));

  const closed = await tcpProbe({ host: "127.0.0.1", port }, 2000);
  assert.equal(closed.ok, false);
  assert.equal(closed.code, "ECONNREFUSED");
  assert.match(closed.error ?? "", /connection refused/);
});

test("printable shows ASCII, escapes control and non-ASCII bytes", () => {
  assert.equal(printable(Buffer.from("AB12,blue\r\n")), "AB12,blue\\r\\n");
  assert.equal(printable(Buffer.from([0xd4, 0xc1, 0x41, 0x00, 0x5c, 0x09])), "\\xd4\\xc1A\\x00\\\\\\t");
});
