import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { bundleService, keepAscii } from "../../scripts/bundle-service.js";
import { startAedes } from "../helpers/aedes-broker.js";

/**
 * The bundled service (scripts/bundle-service.ts, the last step of `npm run build`), built into
 * an installed-like tree of its own: package.json, the panel and node_modules beside dist/, as
 * a release unpacks them. It must find those files from its chunks in dist/bundle/, start,
 * answer, serve the panel and stop cleanly, and keep every command of the CLI.
 */
const repo = resolve(import.meta.dirname, "..", "..");
const root = mkdtempSync(join(tmpdir(), "lk-bundled-"));
const cli = join(root, "dist", "cli.js");

before(async () => {
  copyFileSync(join(repo, "package.json"), join(root, "package.json"));
  symlinkSync(join(repo, "node_modules"), join(root, "node_modules"));
  symlinkSync(join(repo, "panel"), join(root, "panel"));
  mkdirSync(join(root, "config"));
  copyFileSync(join(repo, "config", "demo.json"), join(root, "config", "demo.json"));
  await bundleService(repo, join(root, "dist"));
});

after(() => rmSync(root, { recursive: true, force: true }));

test("the bundle is an entry and its chunks; no emulator or release code in what `run` loads first", () => {
  assert.ok(existsSync(cli));
  const entry = readFileSync(cli, "utf8");
  assert.ok(entry.startsWith("#!/usr/bin/env node"), "the entry keeps its shebang");
  assert.match(entry, /from "\.\/bundle\/chunk-[\w-]+\.js"/);
  const chunks = readdirSync(join(root, "dist", "bundle"));
  assert.ok(
    chunks.some((name) => name.startsWith("emulator-")),
    "the emulator command is a chunk of its own, loaded when run",
  );
  // zod's other languages are left out; its English messages stay.
  const all = chunks.map((name) => readFileSync(join(root, "dist", "bundle", name), "utf8")).join("\n");
  assert.doesNotMatch(all, /node_modules\/zod\/v4\/locales\/de\.js/);
  assert.match(all, /node_modules\/zod\/v4\/locales\/en\.js/);
  // All ASCII, so V8 holds each chunk's source one byte a character.
  assert.doesNotMatch(all + entry, /[^\x00-\x7F]/u);
});

test("non-ASCII comments are escaped; a chunk whose code would change (a regular expression, a raw template) is left as it was", async () => {
  const esbuild = await import("esbuild");
  const dir = mkdtempSync(join(tmpdir(), "lk-ascii-"));
  try {
    const files = {
      comment: ['// 车牌 — a comment\nexport const a = "x";\n', true],
      regex: ["export const r = /^无+/u; // 无\n", false],
      raw: ["export const t = String.raw`无`; // 无\n", false],
    } as const;
    for (const [name, [text, escaped]] of Object.entries(files)) {
      const file = join(dir, `${name}.js`);
      writeFileSync(file, text);
      await keepAscii(file, esbuild);
      const after = readFileSync(file, "utf8");
      if (escaped) {
        assert.doesNotMatch(after, /[^\x00-\x7F]/u, name);
        assert.ok(after.includes("\\u8f66\\u724c"), after);
      } else assert.equal(after, text, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the bundled CLI answers --version from package.json and --help with every command", () => {
  const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string };
  const version = spawnSync(process.execPath, [cli, "--version"], { encoding: "utf8" });
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), pkg.version);
  const help = spawnSync(process.execPath, [cli, "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  for (const command of ["lanekeeper run", "lanekeeper demo", "lanekeeper fee", "lanekeeper release build", "lanekeeper fleet rollout"])
    assert.ok(help.stdout.includes(command), command);
  const fee = spawnSync(process.execPath, [cli, "fee", "--help"], { encoding: "utf8" });
  assert.equal(fee.status, 0, fee.stderr);
  const wrong = spawnSync(process.execPath, [cli, "run", "--no-such-flag"], { encoding: "utf8" });
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /unknown option --no-such-flag/);
});

test("the bundled service starts with the unit's node options, answers /healthz and /metrics, serves the panel, joins its fleet and lot brokers and stops cleanly", async (t) => {
  // The packages the service loads lazily (mqtt for the fleet link and the shared lot,
  // prom-client at the first scrape) are chunks of the bundle: they must work from there.
  const broker = await startAedes();
  t.after(() => broker.close());
  const raw = JSON.parse(readFileSync(join(repo, "config", "demo.json"), "utf8")) as Record<string, Record<string, unknown>>;
  raw.store!.dir = join(root, "store");
  raw.api!.port = 0;
  raw.platform!.baseUrl = "http://127.0.0.1:9/";
  raw.mqtt = { url: broker.url, protocolVersion: 4 };
  raw.lot!.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100 };
  const config = join(root, "lanekeeper.json");
  writeFileSync(config, JSON.stringify(raw));
  const unit = readFileSync(join(repo, "systemd", "lanekeeper.service"), "utf8");
  const nodeOptions = /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1] ?? "";
  const child = spawn(process.execPath, [cli, "run", "--config", config], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: nodeOptions, LK_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  try {
    const url = await new Promise<string>((done, fail) => {
      const guard = setTimeout(() => fail(new Error(`no ready line within 30 s; stderr: ${stderr}`)), 30_000);
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
        const found = /local API on (http:\/\/[\d.]+:\d+)/.exec(stdout);
        if (found) {
          clearTimeout(guard);
          done(found[1]!);
        }
      });
      child.once("exit", (code) => fail(new Error(`exited (${code}) before ready; stderr: ${stderr}`)));
    });
    // The logger (pino, inside the bundle) wrote its JSON lines before the ready line.
    const ready = stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg?: string; app?: string })
      .find((entry) => entry.msg === "ready");
    assert.equal(ready?.app, "lanekeeper");
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true });
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), readFileSync(join(repo, "panel", "index.html"), "utf8"));
    const script = await fetch(`${url}/panel/panel.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    await script.arrayBuffer();
    const metrics = await fetch(`${url}/metrics`);
    const exposition = await metrics.text();
    assert.equal(metrics.status, 200, exposition.slice(0, 300));
    assert.match(exposition, /^# TYPE lanekeeper_\w+ (counter|histogram)$/m);
    // Two MQTT clients of the box: its fleet link and its share of the lot.
    const deadline = Date.now() + 10_000;
    while (broker.clientIds().length < 2 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
    assert.equal(broker.clientIds().length, 2, `clients connected: ${JSON.stringify(broker.clientIds())}; stderr:\n${stderr}`);
  } finally {
    child.kill("SIGTERM");
  }
  assert.equal(await exited, 0, `stops cleanly; stderr:\n${stderr}`);
});
