#!/bin/sh
# lanekeeper boot guard: runs before every start of lanekeeper.service (ExecStartPre=).
#
# Why it exists (systemd/README.md "Boot guard"): a release switched in by
# a remote update proves itself in its health window and is then committed; the code that does
# that (src/update/agent.ts resumeAfterBoot) runs inside the new release. A release that dies
# before it gets there (a syntax error, a missing module, a throw at import) never rolls itself
# back, and Restart=always would start it forever. This guard lives OUTSIDE releases/
# (scripts/install.sh puts it in <prefix>/bin/boot-guard) so no release can break it, and it
# uses only sh and the Node.js binary with built-in modules (Node is outside the release too).
#
# What it does, reading <root>/update-state.json (the agent's durable job state):
# - An active job at step switching, restarting or health-check while `current` points at
#   releases/<job version>: the release is switched but not committed. Each start is counted
#   in <root>/update-boot-guard.json (temp file, fsync, rename, fsync dir). When MAX_BOOTS
#   starts have gone by without the agent committing or rolling back, this start (number
#   MAX_BOOTS+1) goes to the previous release instead: the job is first marked in the state
#   (step rolling-back, code E_BOOT_FAILED, a `bootGuard` record), then `current` is pointed
#   back (new link under a temp name, rename(2) over `current`, like `ln -s` + `mv -T`). The
#   old version's agent sees the mark at boot and ends the job as rolled-back
#   (src/update/recovery.ts). Marking before switching means a power cut in between is
#   finished by the next run (below), never mistaken for "the restart brought back the old
#   version".
# - An active job at step rolling-back while `current` still points at the new release (a
#   rollback interrupted between marking and switching, by this guard or by the agent): the
#   switch back is done now.
# - Anything else (no state, no active job, a committed release, a job before its switch, a
#   garbled file): nothing is switched. A stale counter is removed.
#
# It never stops the service from starting: whatever goes wrong is logged and it exits 0
# (the unit also runs it with the "-" prefix).
#
#   boot-guard [--root DIR] [--node PATH] [--max-boots N]
#
# --max-boots defaults to $LANEKEEPER_BOOT_GUARD_MAX_BOOTS (the unit sets 3; override in a
# drop-in with Environment=), else 3. --node defaults to the first `node` on PATH.

ROOT=/opt/lanekeeper
NODE=""
MAX_BOOTS="${LANEKEEPER_BOOT_GUARD_MAX_BOOTS:-3}"
# Bounded so a wedged Node cannot eat the unit's TimeoutStartSec=.
TIMEOUT_S="${LANEKEEPER_BOOT_GUARD_TIMEOUT_S:-20}"

say() { printf 'boot-guard: %s\n' "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root|--node|--max-boots)
      if [ $# -lt 2 ]; then say "$1 needs a value; ignored"; break; fi
      case "$1" in
        --root) ROOT="$2" ;;
        --node) NODE="$2" ;;
        --max-boots) MAX_BOOTS="$2" ;;
      esac
      shift 2
      ;;
    *)
      say "unknown argument $1; ignored"
      shift
      ;;
  esac
done

case "$MAX_BOOTS" in
  ''|*[!0-9]*) say "max boots '$MAX_BOOTS' is not a whole number; using 3"; MAX_BOOTS=3 ;;
esac
if [ "$MAX_BOOTS" -lt 1 ] 2>/dev/null; then say "max boots must be at least 1; using 3"; MAX_BOOTS=3; fi
case "$TIMEOUT_S" in ''|*[!0-9]*|0) TIMEOUT_S=20 ;; esac

if [ -z "$NODE" ]; then NODE="$(command -v node 2>/dev/null || true)"; fi
if [ -z "$NODE" ] || [ ! -x "$NODE" ]; then
  say "no Node.js at '${NODE:-PATH}'; not guarding this start"
  exit 0
fi
if [ ! -d "$ROOT" ]; then
  say "no application root $ROOT; not guarding this start"
  exit 0
fi

# Nothing from the environment may pull release code into the guard.
unset NODE_OPTIONS NODE_PATH

# The guard proper: plain CommonJS with node: built-ins only (the here-document is quoted, so
# sh expands nothing in it).
GUARD_JS=$(cat <<'EOF'
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(process.argv[1]);
const maxBoots = Number(process.argv[2]);
const stateFile = path.join(root, "update-state.json");
const countFile = path.join(root, "update-boot-guard.json");
// Steps after which `current` may point at a release that has not been committed yet
// (src/update/state.ts activeSteps).
const uncommitted = new Set(["switching", "restarting", "health-check"]);
const say = (message) => process.stdout.write("boot-guard: " + message + "\n");

function syncDir(dir) {
  let fd;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // a filesystem that cannot fsync a directory still renames atomically
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Temp file in the same directory, fsync, rename over the target, fsync the directory. */
function writeDurable(file, text) {
  const temp = path.join(path.dirname(file), "." + path.basename(file) + ".tmp-guard-" + process.pid);
  const fd = fs.openSync(temp, "w", 0o644);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  syncDir(path.dirname(file));
}

/** New link under a temp name (".current.tmp-": the agent sweeps leftovers), rename over. */
function switchCurrent(target) {
  const temp = path.join(root, ".current.tmp-guard-" + process.pid);
  fs.rmSync(temp, { force: true });
  fs.symlinkSync(target, temp);
  try {
    fs.renameSync(temp, path.join(root, "current"));
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  syncDir(root);
}

function readCurrent() {
  try {
    return fs.readlinkSync(path.join(root, "current"));
  } catch {
    return null;
  }
}

function isDir(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function dropCounter() {
  try {
    fs.unlinkSync(countFile);
    syncDir(root);
  } catch {
    // none there
  }
}

function readCounter() {
  let text;
  try {
    text = fs.readFileSync(countFile, "utf8");
  } catch {
    return null;
  }
  try {
    const c = JSON.parse(text);
    if (c && typeof c.jobId === "string" && typeof c.version === "string" && Number.isInteger(c.boots) && c.boots >= 0) return c;
  } catch {
    // fall through
  }
  say(countFile + " is unreadable; counting from zero");
  return null;
}

const safeVersion = (v) => typeof v === "string" && /^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(v);

/** Temp files of a run the power cut short (the agent sweeps the `.current.tmp-` links). */
function sweepLeftovers() {
  let names = [];
  try {
    names = fs.readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    if (/^\.(update-state|update-boot-guard)\.json\.tmp-guard-/.test(name)) fs.rmSync(path.join(root, name), { force: true });
  }
}

function main() {
  sweepLeftovers();
  let text;
  try {
    text = fs.readFileSync(stateFile, "utf8");
  } catch (error) {
    if (error.code === "ENOENT") {
      dropCounter();
      return; // no update was ever recorded
    }
    say("cannot read " + stateFile + " (" + (error.code || error.message) + "); not guarding this start");
    return;
  }
  let state;
  try {
    state = JSON.parse(text);
  } catch {
    say(stateFile + " is not valid JSON; not guarding this start (the agent sets it aside)");
    return;
  }
  if (!state || typeof state !== "object" || state.v !== 1 || !("active" in state)) {
    say(stateFile + " has an unknown format; not guarding this start");
    return;
  }
  const active = state.active;
  if (active === null) {
    dropCounter(); // nothing in flight: the last job was committed or ended
    return;
  }
  if (
    !active ||
    typeof active !== "object" ||
    typeof active.jobId !== "string" ||
    typeof active.step !== "string" ||
    !active.job ||
    !safeVersion(active.job.version) ||
    (active.previousTarget !== null && typeof active.previousTarget !== "string")
  ) {
    say("the active job in " + stateFile + " is unreadable; not guarding this start");
    return;
  }
  const version = active.job.version;
  const current = readCurrent();
  const onNew = current !== null && path.resolve(root, current) === path.resolve(root, "releases", version);
  if (!onNew) {
    dropCounter(); // the release that starts is not the uncommitted one
    return;
  }
  const previous = active.previousTarget;
  const canGoBack = typeof previous === "string" && previous !== "" && isDir(path.resolve(root, previous));

  if (active.step === "rolling-back") {
    if (!canGoBack) {
      say("job " + active.jobId + " is rolling back but there is no previous release on disk; starting " + version);
      return;
    }
    switchCurrent(previous);
    dropCounter();
    say("finished the interrupted rollback of job " + active.jobId + ": current -> " + previous);
    return;
  }
  if (!uncommitted.has(active.step)) return; // before the switch `current` is not the job's business

  let counter = readCounter();
  if (!counter || counter.jobId !== active.jobId || counter.version !== version) counter = { jobId: active.jobId, version, boots: 0 };
  if (counter.boots < maxBoots) {
    counter.boots += 1;
    counter.updatedAt = Date.now();
    writeDurable(countFile, JSON.stringify(counter) + "\n");
    say("start " + counter.boots + " of at most " + maxBoots + " of uncommitted version " + version + " (job " + active.jobId + ")");
    return;
  }
  if (!canGoBack) {
    say("version " + version + " failed to start " + counter.boots + " times but there is no previous release on disk; starting it again");
    return;
  }
  const now = Date.now();
  active.step = "rolling-back";
  active.code = "E_BOOT_FAILED";
  active.reason = "new version failed to start " + counter.boots + " times";
  active.bootGuard = { failedBoots: counter.boots, maxBoots, at: now };
  active.updatedAt = now;
  writeDurable(stateFile, JSON.stringify(state, null, 2) + "\n");
  switchCurrent(previous);
  dropCounter();
  say("version " + version + " failed to start " + counter.boots + " times without committing; current -> " + previous + " (job " + active.jobId + " marked for rollback)");
}

try {
  main();
} catch (error) {
  say("guard failed (" + (error && error.message ? error.message : String(error)) + "); not guarding this start");
}
EOF
)

if command -v timeout >/dev/null 2>&1; then
  timeout "$TIMEOUT_S" "$NODE" -e "$GUARD_JS" -- "$ROOT" "$MAX_BOOTS"
else
  "$NODE" -e "$GUARD_JS" -- "$ROOT" "$MAX_BOOTS"
fi
status=$?
if [ "$status" -ne 0 ]; then say "guard ended with status $status; starting anyway"; fi
exit 0
