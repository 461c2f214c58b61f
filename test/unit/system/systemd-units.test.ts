import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../../helpers/demo-config.js";

/**
 * The unit files pass `systemd-analyze verify`, and say what systemd/README.md
 * describes.
 *
 * What `verify` checks here: the syntax, every key is known in its section, every value parses
 * (a bad one is only a warning on stderr with exit 0, so stderr must be empty), specifiers
 * expand (templates are instantiated as `@i`), and every Exec*= program exists and is
 * executable. What it does not check: that User=/SupplementaryGroups= exist, that
 * ReadWritePaths= exist, that referenced units exist, or anything at run time (there is no
 * systemd as PID 1 in a container). Exec programs missing on the test machine (node installed
 * elsewhere, say) are replaced by stubs in the temp copy so the rest is still verified.
 */

const root = fileURLToPath(new URL("../../..", import.meta.url));
const unitFiles = ["systemd/lanekeeper.service", "systemd/lanekeeper-provision@.service"];
const analyzeMissing =
  spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0 ? undefined : "systemd-analyze is not installed (package systemd; .ci/run installs it)";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Copies a unit into a temp dir, replacing Exec programs absent here by stubs. */
function stagedUnit(file: string, edit: (text: string) => string = (t) => t): { path: string; stubbed: string[] } {
  const dir = tempDir("lk-units-");
  let text = edit(readFileSync(join(root, file), "utf8"));
  const stubbed: string[] = [];
  text = text.replace(/^(Exec[A-Za-z]+=[-@:+!]*)(\/\S+)/gm, (whole, prefix: string, program: string) => {
    if (executable(program)) return whole;
    const stub = join(dir, program.replaceAll("/", "_"));
    writeFileSync(stub, "#!/bin/sh\nexit 0\n");
    chmodSync(stub, 0o755);
    stubbed.push(program);
    return `${prefix}${stub}`;
  });
  const path = join(dir, file.split("/").at(-1)!);
  writeFileSync(path, text);
  return { path, stubbed };
}

function verify(path: string): { status: number | null; stderr: string } {
  const result = spawnSync("systemd-analyze", ["verify", "--man=no", path], { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_COLOR: "0" } });
  return { status: result.status, stderr: result.stderr.trim() };
}

for (const file of unitFiles) {
  test(`${file} passes systemd-analyze verify with no warning`, { skip: analyzeMissing }, () => {
    const { path, stubbed } = stagedUnit(file);
    const result = verify(path);
    assert.equal(result.stderr, "", `warnings for ${file}${stubbed.length ? ` (stubbed: ${stubbed.join(", ")})` : ""}`);
    assert.equal(result.status, 0);
  });
}

test("verify does catch a bad value and a missing program (so the checks above can fail)", { skip: analyzeMissing }, () => {
  const badValue = verify(stagedUnit("systemd/lanekeeper.service", (t) => t.replace(/^WatchdogSec=20s$/m, "WatchdogSec=twenty")).path);
  assert.match(badValue.stderr, /WatchdogSec|twenty/);
  const badKey = verify(stagedUnit("systemd/lanekeeper.service", (t) => t.replace(/^NotifyAccess=all$/m, "NotifyAcess=all")).path);
  assert.match(badKey.stderr, /Unknown key/);
  const dir = tempDir("lk-units-");
  const path = join(dir, "lanekeeper.service");
  writeFileSync(path, readFileSync(join(root, "systemd/lanekeeper.service"), "utf8").replace(/^ExecStart=\S+/m, "ExecStart=/nonexistent/node"));
  const missing = verify(path);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /not executable/);
});

/** `Key=value` lines of one section (repeated keys collected in order, comments dropped). */
function section(text: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    if (current !== name) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

test("lanekeeper.service: notify + watchdog, never gives up, hardened without losing GPIO, serial or V8", () => {
  const text = readFileSync(join(root, "systemd/lanekeeper.service"), "utf8");
  const unit = section(text, "Unit");
  const service = section(text, "Service");
  const one = (map: Map<string, string[]>, key: string): string | undefined => map.get(key)?.at(-1);
  const words = (map: Map<string, string[]>, key: string): string[] => (map.get(key) ?? []).flatMap((v) => v.split(/\s+/));

  assert.equal(one(service, "Type"), "notify");
  assert.equal(one(service, "NotifyAccess"), "all", "systemd-notify children are not the main PID");
  assert.equal(one(service, "WatchdogSec"), "20s");
  assert.equal(one(service, "Restart"), "always");
  assert.equal(one(unit, "StartLimitIntervalSec"), "0", "start limits must not leave the box dead");
  assert.equal(one(service, "ExecStart"), "/usr/bin/node /opt/lanekeeper/current/dist/cli.js run --config /etc/lanekeeper/lanekeeper.json");
  // The boot guard runs before every start, from outside the releases, and cannot block it.
  assert.equal(one(service, "ExecStartPre"), "-/opt/lanekeeper/bin/boot-guard --node /usr/bin/node --root /opt/lanekeeper");
  assert.ok(words(service, "Environment").includes("LANEKEEPER_BOOT_GUARD_MAX_BOOTS=3"));
  assert.equal(one(service, "KillSignal"), "SIGTERM");
  assert.equal(one(service, "TimeoutStopSec"), "5s");
  assert.equal(one(service, "User"), "lanekeeper");
  assert.deepEqual(words(service, "SupplementaryGroups").sort(), ["dialout", "gpio"]);
  assert.equal(one(service, "ProtectSystem"), "strict");
  for (const path of ["/var/lib/lanekeeper", "/opt/lanekeeper", "/etc/lanekeeper"]) assert.ok(words(service, "ReadWritePaths").includes(path), path);
  assert.equal(one(service, "NoNewPrivileges"), "yes");
  assert.equal(one(service, "PrivateTmp"), "yes");
  // These would break V8, the groups that give the devices, or the network to the platform.
  for (const key of ["MemoryDenyWriteExecute", "PrivateDevices", "PrivateUsers", "PrivateNetwork"]) {
    assert.equal(service.has(key), false, `${key} must not be set`);
  }
  // Devices by allow-list: every tty driver (a glob over /proc/devices names) and GPIO.
  assert.equal(one(service, "DevicePolicy"), "closed");
  assert.deepEqual(service.get("DeviceAllow"), ["char-tty* rw", "char-gpiochip rw"]);
  // Read-only kernel tunables, but the sysfs GPIO interface stays writable.
  assert.equal(one(service, "ProtectKernelTunables"), "yes");
  for (const path of ["-/sys/class/gpio", "-/sys/devices/platform"]) assert.ok(words(service, "ReadWritePaths").includes(path), path);
  assert.equal(one(service, "CapabilityBoundingSet"), "");
  assert.equal(service.get("SystemCallFilter")?.[0], "@system-service");
  assert.equal(one(service, "SystemCallErrorNumber"), "EPERM", "a call left out must be an error, not SIGSYS");
  assert.equal(one(service, "SystemCallArchitectures"), "native");
  // No IP filter in the unit: the platform's public address is the site's to allow (install.sh --ip-allow).
  assert.equal(service.has("IPAddressDeny"), false);
  // Clock ordering without blocking on the network.
  assert.ok(words(unit, "After").includes("time-sync.target"));
  assert.ok(words(unit, "Wants").includes("time-sync.target"));
  assert.equal(unit.has("Requires"), false);
  assert.equal(unit.has("BindsTo"), false);
  assert.equal(words(unit, "After").includes("network-online.target"), false, "would delay start by the wait-online timeout");
  assert.ok(words(unit, "ConditionPathExists").includes("/etc/lanekeeper/lanekeeper.json"));
  // The comment explains the NotifyAccess choice.
  assert.match(text, /NotifyAccess=main would drop/);
  assert.match(text, /MemoryDenyWriteExecute=yes breaks V8/);
});

test("provisioning: udev asks systemd for the template; the template mounts, provisions and unmounts the same path", () => {
  const rules = readFileSync(join(root, "systemd/80-lanekeeper-usb-provision.rules"), "utf8");
  const wants = /ENV\{SYSTEMD_WANTS\}\+="([^"]+)"/.exec(rules)?.[1];
  assert.equal(wants, "lanekeeper-provision@%k.service");
  assert.ok(readdirSync(join(root, "systemd")).includes("lanekeeper-provision@.service"));
  const ruleLines = rules.split("\n").filter((line) => line.trim() && !line.trim().startsWith("#"));
  assert.ok(
    ruleLines.every((line) => !/\bRUN\b/.test(line)),
    "udev must not mount or run anything itself",
  );
  assert.match(rules, /TAG\+="systemd"/);

  const service = section(readFileSync(join(root, "systemd/lanekeeper-provision@.service"), "utf8"), "Service");
  const mountPoint = "/run/lanekeeper/usb/%I";
  assert.equal(service.get("Type")?.[0], "oneshot");
  assert.match(service.get("ExecStartPre")?.[0] ?? "", new RegExp(`^/usr/bin/systemd-mount .* /dev/%I ${mountPoint}$`));
  assert.equal(service.get("ExecStart")?.[0], `/usr/bin/node /opt/lanekeeper/current/dist/cli.js provision ${mountPoint}`);
  assert.equal(service.get("ExecStopPost")?.[0], `-/usr/bin/systemd-umount ${mountPoint}`);
  assert.match(service.get("ExecCondition")?.[0] ?? "", /findmnt/);
  // Root, but only the capabilities it needs, no network, and the host's mount namespace (the
  // stick is mounted by PID 1 while the unit runs).
  assert.deepEqual(service.get("CapabilityBoundingSet")?.at(-1)?.split(/\s+/).sort(), ["CAP_CHOWN", "CAP_DAC_READ_SEARCH", "CAP_FOWNER"]);
  assert.equal(service.get("RestrictAddressFamilies")?.at(-1), "AF_UNIX");
  for (const key of ["ProtectSystem", "PrivateTmp", "PrivateMounts", "ProtectKernelTunables", "ProtectHome", "PrivateDevices"])
    assert.equal(service.has(key), false, `${key} needs a mount namespace`);
});

/** A small udev rules linter: `KEY[{attr}] op "value"` pairs, known keys, GOTO targets exist. */
function lintUdevRules(text: string): string[] {
  const problems: string[] = [];
  const known = new Set([
    "ACTION",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "KERNEL",
    "KERNELS",
    "DRIVERS",
    "ENV",
    "ATTR",
    "ATTRS",
    "TAG",
    "SYMLINK",
    "GROUP",
    "MODE",
    "OWNER",
    "GOTO",
    "LABEL",
    "IMPORT",
    "PROGRAM",
    "RESULT",
    "DEVPATH",
    "NAME",
    "OPTIONS",
    "TEST",
  ]);
  const labels = new Set<string>();
  const gotos: string[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const pair = /^\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)/;
    let rest = line;
    while (rest.length > 0) {
      const match = pair.exec(rest);
      if (!match) {
        problems.push(`line ${index + 1}: cannot parse at ${JSON.stringify(rest)}`);
        return;
      }
      const [whole, key, , , value] = match;
      if (!known.has(key!)) problems.push(`line ${index + 1}: unknown key ${key}`);
      if (key === "LABEL") labels.add(value!);
      if (key === "GOTO") gotos.push(value!);
      rest = rest.slice(whole.length).trimStart();
    }
  });
  for (const target of gotos) if (!labels.has(target)) problems.push(`GOTO ${target} has no LABEL`);
  return problems;
}

test("every udev rules file parses, uses known keys, and its GOTOs land", () => {
  const files = [
    "systemd/80-lanekeeper-usb-provision.rules",
    ...readdirSync(join(root, "hw/udev"))
      .filter((f) => f.endsWith(".rules") || f.endsWith(".rules.example"))
      .map((f) => `hw/udev/${f}`),
  ];
  assert.ok(files.length >= 2, files.join(", "));
  for (const file of files) assert.deepEqual(lintUdevRules(readFileSync(join(root, file), "utf8")), [], file);
  // The linter itself rejects what it should.
  assert.notDeepEqual(lintUdevRules('KERNEL=="x", GOTO="nowhere"'), []);
  assert.notDeepEqual(lintUdevRules('KERNEL=="x" SYMLINK+="y"'), []);
  assert.notDeepEqual(lintUdevRules('KERNLE=="x"'), []);
});

/**
 * The ExecStartPre= line with the box's paths rewritten into a temp root: /opt/lanekeeper ->
 * <tmp>/opt/lanekeeper holding the repository's scripts/boot-guard.sh as bin/boot-guard (what
 * scripts/install.sh puts there), /usr/bin/node -> this Node.
 */
function guardRoot(): { prefix: string; edit: (text: string) => string } {
  const prefix = join(tempDir("lk-guard-unit-"), "opt/lanekeeper");
  mkdirSync(join(prefix, "bin"), { recursive: true });
  copyFileSync(join(root, "scripts/boot-guard.sh"), join(prefix, "bin/boot-guard"));
  chmodSync(join(prefix, "bin/boot-guard"), 0o755);
  const edit = (text: string): string => text.replaceAll("/opt/lanekeeper", prefix).replaceAll("/usr/bin/node ", `${process.execPath} `);
  return { prefix, edit };
}

test("the boot guard ExecStartPre: verify finds the installed guard in a temp root, and misses a missing one", { skip: analyzeMissing }, () => {
  const { prefix, edit } = guardRoot();
  // "-" (failure ignored) also stops verify from checking the program, so check it without.
  const strict = (text: string): string => edit(text).replace(/^ExecStartPre=-/m, "ExecStartPre=");
  const staged = stagedUnit("systemd/lanekeeper.service", strict);
  assert.equal(staged.stubbed.includes(join(prefix, "bin/boot-guard")), false, "the real guard, not a stub");
  const result = verify(staged.path);
  assert.equal(result.stderr, "");
  assert.equal(result.status, 0);
  rmSync(join(prefix, "bin/boot-guard"));
  const dir = tempDir("lk-units-");
  const path = join(dir, "lanekeeper.service");
  writeFileSync(path, strict(readFileSync(join(root, "systemd/lanekeeper.service"), "utf8")).replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
  const missing = verify(path);
  assert.match(missing.stderr, /boot-guard is not executable/);
});

test("the boot guard ExecStartPre command line runs as written: counts an uncommitted start, always exits 0", () => {
  const { prefix, edit } = guardRoot();
  const text = edit(readFileSync(join(root, "systemd/lanekeeper.service"), "utf8"));
  const service = section(text, "Service");
  const line = service.get("ExecStartPre")?.at(-1) ?? "";
  const [program, ...args] = line.replace(/^-/, "").split(/\s+/);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  for (const assignment of (service.get("Environment") ?? []).flatMap((v) => v.split(/\s+/))) {
    const eq = assignment.indexOf("=");
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  const run = (): { status: number | null; stdout: string } => {
    const result = spawnSync(program!, args, { encoding: "utf8", env });
    return { status: result.status, stdout: result.stdout + result.stderr };
  };

  // A fresh box: no update state. Nothing said, nothing written, start allowed.
  const fresh = run();
  assert.equal(fresh.status, 0);
  assert.equal(fresh.stdout, "");

  // An update switched to 0.2.0 and restarting: the first start is counted against the unit's limit.
  for (const version of ["0.1.0", "0.2.0"]) mkdirSync(join(prefix, "releases", version), { recursive: true });
  symlinkSync("releases/0.2.0", join(prefix, "current"));
  const job = { v: 1, version: "0.2.0", url: "http://127.0.0.1/b.tar", sha256: "a".repeat(64), size: 1, expiresAt: 0, allowDowngrade: false };
  const active = { jobId: "j1", job, step: "restarting", fromVersion: "0.1.0", previousTarget: "releases/0.1.0", healthBoots: 0, rollbackBoots: 0, startedAt: 0, updatedAt: 0 };
  writeFileSync(join(prefix, "update-state.json"), JSON.stringify({ v: 1, active, history: [] }));
  const counted = run();
  assert.equal(counted.status, 0);
  assert.match(counted.stdout, /start 1 of at most 3 of uncommitted version 0\.2\.0/);
  assert.doesNotMatch(counted.stdout, /unknown argument|needs a value/);
  assert.ok(existsSync(join(prefix, "update-boot-guard.json")));
});
