import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, rmSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers/demo-config.js";

/**
 * scripts/install.sh into a temp root (DESTDIR): the expected tree, a second run that changes
 * nothing (same manifest of paths, modes, sizes, mtimes and link targets), a new version that
 * switches `current`, an uninstall that keeps config and data, a purge that does not, and the
 * refusal of an old Node.js. The installed tree comes from a small built tree made here (a
 * stub dist/cli.js, one dependency) plus the repository's real units, rules and script.
 */

const repo = fileURLToPath(new URL("../..", import.meta.url));

function builtTree(version: string): string {
  const src = tempDir("lk-src-");
  for (const dir of ["systemd", "hw/udev", "panel"]) cpSync(join(repo, dir), join(src, dir), { recursive: true });
  mkdirSync(join(src, "scripts"));
  cpSync(join(repo, "scripts/install.sh"), join(src, "scripts/install.sh"));
  cpSync(join(repo, "scripts/uninstall.sh"), join(src, "scripts/uninstall.sh"));
  cpSync(join(repo, "scripts/boot-guard.sh"), join(src, "scripts/boot-guard.sh"));
  mkdirSync(join(src, "config"));
  cpSync(join(repo, "config/demo.json"), join(src, "config/demo.json"));
  mkdirSync(join(src, "dist"));
  writeFileSync(join(src, "dist/cli.js"), `console.log("lanekeeper ${version}");\n`);
  writeFileSync(join(src, "package.json"), JSON.stringify({ name: "lanekeeper", version }));
  mkdirSync(join(src, "node_modules/tiny-dep"), { recursive: true });
  writeFileSync(join(src, "node_modules/tiny-dep/index.js"), "export {};\n");
  return src;
}

function install(src: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string } {
  const result = spawnSync("bash", [join(src, "scripts/install.sh"), ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

/** Every path under `root` with type, mode, size, mtime and link target. */
function manifest(root: string): string[] {
  const lines: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path);
      const rel = path.slice(root.length);
      if (st.isSymbolicLink()) lines.push(`${rel} link ${readlinkSync(path)} ${st.mtimeMs}`);
      else if (st.isDirectory()) {
        lines.push(`${rel} dir ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`);
        walk(path);
      } else lines.push(`${rel} file ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(root);
  return lines;
}

const node = process.execPath;

test("installs the expected tree into a temp root, touching nothing outside it", () => {
  const src = builtTree("1.2.3");
  const root = tempDir("lk-root-");
  const run = install(src, ["--destdir", root, "--node", node]);
  assert.equal(run.code, 0, run.err + run.out);

  const opt = join(root, "opt/lanekeeper");
  assert.equal(readlinkSync(join(opt, "current")), "releases/1.2.3", "relative link, valid inside and outside the staging root");
  for (const file of [
    "dist/cli.js",
    "panel/index.html",
    "panel/panel.js",
    "package.json",
    "node_modules/tiny-dep/index.js",
    "systemd/lanekeeper.service",
    "scripts/install.sh",
    ".lanekeeper-release",
  ]) {
    assert.ok(existsSync(join(opt, "releases/1.2.3", file)), file);
  }
  assert.equal((lstatSync(join(root, "etc/lanekeeper")).mode & 0o7777).toString(8), "2770");
  assert.equal((lstatSync(join(root, "var/lib/lanekeeper")).mode & 0o7777).toString(8), "750");
  assert.ok(existsSync(join(root, "etc/udev/rules.d/80-lanekeeper-usb-provision.rules")));
  assert.ok(existsSync(join(root, "etc/udev/rules.d/61-lanekeeper-serial.rules")));
  assert.ok(!existsSync(join(root, "etc/udev/rules.d/62-lanekeeper-site.rules")), "the site example is never installed as a rule");
  assert.ok(existsSync(join(root, "etc/lanekeeper/lanekeeper.example.json")));
  assert.ok(!existsSync(join(root, "etc/lanekeeper/lanekeeper.json")), "no config is invented");

  // Units point at the box's paths, not at the staging root, and at the Node that was checked.
  const unit = readFileSync(join(root, "etc/systemd/system/lanekeeper.service"), "utf8");
  assert.match(
    unit,
    new RegExp(`^ExecStart=${node.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} /opt/lanekeeper/current/dist/cli\\.js run --config /etc/lanekeeper/lanekeeper\\.json$`, "m"),
  );
  assert.doesNotMatch(unit, new RegExp(root));
  const provision = readFileSync(join(root, "etc/systemd/system/lanekeeper-provision@.service"), "utf8");
  assert.match(provision, /^ExecStart=\S+ \/opt\/lanekeeper\/current\/dist\/cli\.js provision \/run\/lanekeeper\/usb\/%I$/m);
  // The boot guard sits outside every release, where the unit's ExecStartPre= looks for it.
  const guard = join(opt, "bin/boot-guard");
  assert.equal(lstatSync(guard).mode & 0o777, 0o755);
  assert.match(unit, new RegExp(`^ExecStartPre=-/opt/lanekeeper/bin/boot-guard --node ${node.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} --root /opt/lanekeeper$`, "m"));
  assert.match(unit, /^Environment=LANEKEEPER_BOOT_GUARD_MAX_BOOTS=3$/m);
  assert.match(readFileSync(guard, "utf8"), /^ROOT=\/opt\/lanekeeper$/m);
  assert.match(run.out, /installed \/opt\/lanekeeper\/bin\/boot-guard/);
  // It runs from there (against the staged root): no update recorded, nothing to do, exit 0.
  const guarded = spawnSync("sh", [guard, "--node", node, "--root", opt], { encoding: "utf8" });
  assert.equal(guarded.status, 0, guarded.stderr);
  assert.equal(guarded.stdout, "");
  assert.equal(readlinkSync(join(opt, "current")), "releases/1.2.3");

  const wrapper = readFileSync(join(root, "usr/local/bin/lanekeeper"), "utf8");
  assert.match(wrapper, /exec \S+ \/opt\/lanekeeper\/current\/dist\/cli\.js "\$@"/);
  assert.equal(lstatSync(join(root, "usr/local/bin/lanekeeper")).mode & 0o111, 0o111);

  // The wrapper really runs the installed release (through the staged path).
  const ran = spawnSync(node, [join(opt, "current/dist/cli.js")], { encoding: "utf8" });
  assert.equal(ran.stdout.trim(), "lanekeeper 1.2.3");

  // System commands are printed, not run.
  assert.match(run.out, /would run: useradd --system .* lanekeeper/);
  assert.match(run.out, /would run: systemctl daemon-reload/);
  assert.match(run.out, /would run: systemctl enable lanekeeper\.service/);
  assert.match(run.out, /would run: udevadm control --reload-rules/);
});

test("a second run changes nothing: same manifest, mtimes included", () => {
  const src = builtTree("1.2.3");
  const root = tempDir("lk-root-");
  assert.equal(install(src, ["--destdir", root, "--node", node]).code, 0);
  const first = manifest(root);
  const again = install(src, ["--destdir", root, "--node", node]);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(manifest(root), first);
  assert.match(again.out, /nothing changed/);
  assert.doesNotMatch(again.out, /would run: (systemctl daemon-reload|systemctl restart|udevadm)/);

  // Editing an installed unit by hand is repaired by the next run (and only that file moves).
  const unitPath = join(root, "etc/systemd/system/lanekeeper.service");
  writeFileSync(unitPath, "[Service]\nExecStart=/bin/false\n");
  const repaired = install(src, ["--destdir", root, "--node", node]);
  assert.match(repaired.out, /installed \/etc\/systemd\/system\/lanekeeper\.service/);
  assert.match(repaired.out, /would run: systemctl daemon-reload/);
  const changedPaths = manifest(root)
    .filter((line) => !first.includes(line))
    .map((line) => line.split(" ")[0]);
  assert.deepEqual(changedPaths.sort(), ["/etc/systemd/system", "/etc/systemd/system/lanekeeper.service"]);
});

test("a new version lands beside the old one and `current` switches to it", () => {
  const root = tempDir("lk-root-");
  assert.equal(install(builtTree("1.2.3"), ["--destdir", root, "--node", node]).code, 0);
  const next = install(builtTree("1.3.0"), ["--destdir", root, "--node", node]);
  assert.equal(next.code, 0, next.err);
  const releases = join(root, "opt/lanekeeper/releases");
  assert.deepEqual(readdirSync(releases).sort(), ["1.2.3", "1.3.0"], "no partial copies left behind");
  assert.equal(readlinkSync(join(root, "opt/lanekeeper/current")), "releases/1.3.0");
  assert.match(next.out, /current -> releases\/1\.3\.0/);
});

test("--prefix moves the app and the units follow", () => {
  const root = tempDir("lk-root-");
  const run = install(builtTree("2.0.0"), ["--destdir", root, "--node", node, "--prefix", "/srv/lk"]);
  assert.equal(run.code, 0, run.err);
  assert.equal(readlinkSync(join(root, "srv/lk/current")), "releases/2.0.0");
  const unit = readFileSync(join(root, "etc/systemd/system/lanekeeper.service"), "utf8");
  assert.match(unit, /^ExecStart=\S+ \/srv\/lk\/current\/dist\/cli\.js run/m);
  assert.match(unit, /^ReadWritePaths=.*\/srv\/lk\b/m);
  assert.match(unit, /^ExecStartPre=-\/srv\/lk\/bin\/boot-guard --node \S+ --root \/srv\/lk$/m);
  assert.match(readFileSync(join(root, "srv/lk/bin/boot-guard"), "utf8"), /^ROOT=\/srv\/lk$/m);
  assert.doesNotMatch(
    unit
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .join("\n"),
    /\/opt\/lanekeeper/,
  );
});

test("the installed units still pass systemd-analyze verify", { skip: spawnSync("systemd-analyze", ["--version"]).status === 0 ? false : "systemd-analyze not installed" }, () => {
  const root = tempDir("lk-root-");
  assert.equal(install(builtTree("1.2.3"), ["--destdir", root, "--node", node]).code, 0);
  for (const unit of ["lanekeeper.service", "lanekeeper-provision@.service"]) {
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", join(root, "etc/systemd/system", unit)], { encoding: "utf8" });
    assert.equal(result.stderr.trim(), "", unit);
    assert.equal(result.status, 0, unit);
  }
});

test("uninstall keeps config and data; --purge removes them; both are repeatable", () => {
  const src = builtTree("1.2.3");
  const root = tempDir("lk-root-");
  assert.equal(install(src, ["--destdir", root, "--node", node]).code, 0);
  writeFileSync(join(root, "etc/lanekeeper/lanekeeper.json"), "{}\n");
  mkdirSync(join(root, "var/lib/lanekeeper/store"));
  writeFileSync(join(root, "var/lib/lanekeeper/store/records.json"), "[]\n");

  const removed = spawnSync("bash", [join(src, "scripts/uninstall.sh"), "--destdir", root], { encoding: "utf8" });
  assert.equal(removed.status, 0, removed.stderr);
  for (const gone of [
    "opt/lanekeeper",
    "etc/systemd/system/lanekeeper.service",
    "etc/systemd/system/lanekeeper-provision@.service",
    "etc/udev/rules.d/80-lanekeeper-usb-provision.rules",
    "etc/udev/rules.d/61-lanekeeper-serial.rules",
    "usr/local/bin/lanekeeper",
  ]) {
    assert.ok(!existsSync(join(root, gone)), `${gone} should be gone`);
  }
  assert.equal(readFileSync(join(root, "etc/lanekeeper/lanekeeper.json"), "utf8"), "{}\n");
  assert.equal(readFileSync(join(root, "var/lib/lanekeeper/store/records.json"), "utf8"), "[]\n");
  assert.match(removed.stdout, /would run: systemctl disable --now lanekeeper\.service/);
  assert.match(removed.stdout, /kept \/etc\/lanekeeper/);

  const twice = install(src, ["--destdir", root, "--uninstall"]);
  assert.equal(twice.code, 0, twice.err);
  assert.doesNotMatch(twice.out, /removed/);

  const purged = install(src, ["--destdir", root, "--uninstall", "--purge"]);
  assert.equal(purged.code, 0, purged.err);
  assert.ok(!existsSync(join(root, "etc/lanekeeper")));
  assert.ok(!existsSync(join(root, "var/lib/lanekeeper")));
  assert.match(purged.out, /would run: userdel lanekeeper/);
});

test("an old Node.js is refused with a clear message before anything is written", () => {
  const src = builtTree("1.2.3");
  const root = tempDir("lk-root-");
  const oldNode = join(tempDir("lk-node-"), "node");
  writeFileSync(oldNode, "#!/bin/sh\necho 18.19.0\n");
  chmodSync(oldNode, 0o755);
  const run = install(src, ["--destdir", root, "--node", oldNode]);
  assert.equal(run.code, 1);
  assert.match(run.err, /needs Node\.js >= 20\.19; .*node is v18\.19\.0/);
  assert.match(run.err, /Debian's own nodejs package is too old/);
  assert.deepEqual(readdirSync(root), [], "nothing installed");

  // 20.18 is just below the line; 20.19.0 is on it.
  writeFileSync(oldNode, "#!/bin/sh\necho 20.18.3\n");
  assert.equal(install(src, ["--destdir", root, "--node", oldNode]).code, 1);
  writeFileSync(oldNode, `#!/bin/sh\nif [ "$1" = -p ] && [ "$2" = process.versions.node ]; then echo 20.19.0; else exec ${node} "$@"; fi\n`);
  const ok = install(src, ["--destdir", root, "--node", oldNode]);
  assert.equal(ok.code, 0, ok.err);
});

test("a tree that was not built, bad options and a bad release name are clear errors", () => {
  const src = builtTree("1.2.3");
  const root = tempDir("lk-root-");
  const unbuilt = builtTree("1.2.3");
  rmSync(join(unbuilt, "dist"), { recursive: true });
  const noDist = install(unbuilt, ["--destdir", root, "--node", node]);
  assert.equal(noDist.code, 1);
  assert.match(noDist.err, /dist\/cli\.js is missing: run `npm run build` first/);
  const bogus = install(src, ["--destdir", root, "--frobnicate"]);
  assert.equal(bogus.code, 1);
  assert.match(bogus.err, /unknown option: --frobnicate/);
  const badName = install(src, ["--destdir", root, "--node", node, "--version", "../evil"]);
  assert.equal(badName.code, 1);
  assert.match(badName.err, /release name/);
  const purgeAlone = install(src, ["--destdir", root, "--purge"]);
  assert.equal(purgeAlone.code, 1);
  assert.deepEqual(readdirSync(root), []);
});

test("--from installs another built tree (one without scripts/ or config/) with this script", () => {
  const src = builtTree("3.1.0");
  rmSync(join(src, "scripts"), { recursive: true });
  rmSync(join(src, "config"), { recursive: true });
  const root = tempDir("lk-root-");
  const result = spawnSync("bash", [join(repo, "scripts/install.sh"), "--destdir", root, "--node", node, "--from", src], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr + result.stdout);
  assert.equal(readlinkSync(join(root, "opt/lanekeeper/current")), "releases/3.1.0");
  assert.ok(existsSync(join(root, "opt/lanekeeper/bin/boot-guard")), "the guard comes from beside install.sh, not from the tree");
  assert.ok(!existsSync(join(root, "etc/lanekeeper/lanekeeper.example.json")), "no example without config/demo.json");
  const again = spawnSync("bash", [join(repo, "scripts/install.sh"), "--destdir", root, "--node", node, "--from", src], { encoding: "utf8" });
  assert.match(again.stdout, /nothing changed/);
});

test("--ip-allow writes the network drop-in (checked, kept on re-runs without it, removed on uninstall)", () => {
  const src = builtTree("1.2.3");
  const root = tempDir("lk-root-");
  const dropIn = join(root, "etc/systemd/system/lanekeeper.service.d/50-ip-allow.conf");
  const plain = install(src, ["--destdir", root, "--node", node]);
  assert.equal(plain.code, 0, plain.err);
  assert.ok(!existsSync(dropIn));
  assert.match(plain.out, /may reach any address; --ip-allow LIST restricts it/);

  const allowed = install(src, ["--destdir", root, "--node", node, "--ip-allow", "203.0.113.0/24,2001:db8::/32 198.51.100.7"]);
  assert.equal(allowed.code, 0, allowed.err);
  const written = readFileSync(dropIn, "utf8");
  assert.match(written, /^\[Service\]\nIPAddressDeny=any\n/m);
  assert.match(written, /^IPAddressAllow=localhost link-local multicast$/m);
  assert.match(written, /^IPAddressAllow=10\.0\.0\.0\/8 172\.16\.0\.0\/12 192\.168\.0\.0\/16 100\.64\.0\.0\/10 fc00::\/7$/m);
  assert.match(written, /^IPAddressAllow=203\.0\.113\.0\/24 2001:db8::\/32 198\.51\.100\.7$/m);
  assert.match(allowed.out, /would run: systemctl daemon-reload/);
  if (spawnSync("systemd-analyze", ["--version"]).status === 0) {
    const verified = spawnSync("systemd-analyze", ["verify", "--man=no", join(root, "etc/systemd/system/lanekeeper.service")], { encoding: "utf8" });
    assert.equal(verified.stderr.trim(), "");
  }

  const again = install(src, ["--destdir", root, "--node", node]);
  assert.match(again.out, /nothing changed/);
  assert.ok(existsSync(dropIn), "a run without --ip-allow leaves the site's list alone");

  const bad = install(src, ["--destdir", root, "--node", node, "--ip-allow", "10.0.0.0/8;reboot"]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--ip-allow: '10\.0\.0\.0\/8;reboot' is not an address/);

  assert.equal(install(src, ["--destdir", root, "--uninstall"]).code, 0);
  assert.ok(!existsSync(join(root, "etc/systemd/system/lanekeeper.service.d")), "the drop-in and its directory are gone");
});
