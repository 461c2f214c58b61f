import { test } from "node:test";
import assert from "node:assert/strict";
import { commands } from "../../../src/cli/commands.js";
import { runInProcess } from "./capture.js";

/*
 * `--help` on every command of the registry (the dispatch table), so a command added without
 * its help page, options or example fails here; and a wrong option is one line and exit 2.
 */

test("every command and subcommand prints its help page with -h, --help and `help <command>`, exit 0", async () => {
  assert.ok(commands.length >= 17, "the registry lists every command, fleet and release ones included");
  for (const entry of commands) {
    const words = entry.name.split(" ");
    const command = await entry.load();
    const long = await runInProcess([...words, "--help"]);
    assert.equal(long.code, 0, `${entry.name} --help: ${long.stderr}`);
    assert.equal(long.stderr, "", `${entry.name} --help writes nothing on stderr`);
    const page = long.stdout;
    assert.ok(page.startsWith(`Usage: lanekeeper ${entry.name}`), `${entry.name}: ${page.slice(0, 80)}`);
    assert.ok(page.includes(command.summary), `${entry.name}: the summary`);
    assert.match(page, /^Options:$/m, `${entry.name}: an options section`);
    assert.match(page, /^ {2}-h, --help +show this help$/m);
    for (const [name, spec] of Object.entries(command.options)) {
      assert.match(page, new RegExp(`--${name}\\b`), `${entry.name}: --${name} is listed`);
      assert.ok(page.includes(spec.describe), `${entry.name}: --${name} is described`);
      if (spec.defaultText !== undefined) assert.ok(page.includes(`(default: ${spec.defaultText})`), `${entry.name}: --${name} shows its default`);
    }
    assert.match(page, /^Examples?:$/m, `${entry.name}: an example`);
    assert.ok(command.examples.length > 0 && command.examples.some((example) => example.includes(`lanekeeper ${entry.name}`)), `${entry.name}: an example runs it`);

    // The short flag, the help word, and --help after other words give the same page.
    assert.deepEqual(await runInProcess([...words, "-h"]), long, `${entry.name} -h`);
    assert.deepEqual(await runInProcess(["help", ...words]), long, `help ${entry.name}`);
    assert.deepEqual(await runInProcess([...words, "some-argument", "--help"]), long, `${entry.name} … --help`);
  }
});

test("the command groups (fleet, release, config) list their subcommands on --help; alone they are a one-line mistake", async () => {
  const groups = [...new Set(commands.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]!))];
  assert.deepEqual(groups.sort(), ["config", "emulator", "fleet", "release"]);
  for (const group of groups.filter((g) => !commands.some((c) => c.name === g))) {
    const help = await runInProcess([group, "--help"]);
    assert.equal(help.code, 0, group);
    for (const member of commands.filter((c) => c.name.startsWith(`${group} `)))
      assert.ok(help.stdout.includes(`lanekeeper ${member.name}`), `${group} --help lists ${member.name}`);
    const bare = await runInProcess([group]);
    assert.equal(bare.code, 2, `${group} alone`);
    assert.match(bare.stderr, new RegExp(`^lanekeeper: name a ${group} command \\(.+\\); see lanekeeper ${group} --help$`));
    const unknown = await runInProcess([group, "nope"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, new RegExp(`^lanekeeper: unknown command "${group} nope" .*see lanekeeper ${group} --help$`));
  }
  const top = await runInProcess(["--help"]);
  assert.equal(top.code, 0);
  for (const entry of commands) assert.ok(top.stdout.includes(`lanekeeper ${entry.name}`), `--help lists ${entry.name}`);
  assert.match((await runInProcess(["frobnicate"])).stderr, /^lanekeeper: unknown command "frobnicate"; see lanekeeper --help$/);
});

test("an unknown option or a missing value is one line naming it, pointing at --help, exit 2, for every command", async () => {
  for (const entry of commands) {
    const words = entry.name.split(" ");
    const unknown = await runInProcess([...words, "--no-such-option"]);
    assert.equal(unknown.code, 2, `${entry.name}: ${unknown.stderr}`);
    assert.equal(unknown.stdout, "");
    assert.equal(unknown.stderr, `lanekeeper ${entry.name}: unknown option --no-such-option; see lanekeeper ${entry.name} --help`);

    const command = await entry.load();
    const valued = Object.entries(command.options).find(([, spec]) => spec.type === "string");
    if (!valued) continue;
    const missing = await runInProcess([...words, `--${valued[0]}`]);
    assert.equal(missing.code, 2, `${entry.name} --${valued[0]} without its value`);
    assert.doesNotMatch(missing.stderr, /\n/, `${entry.name}: one line`);
    assert.match(missing.stderr, new RegExp(`^lanekeeper ${entry.name}: .*--${valued[0]}.*argument missing; see lanekeeper ${entry.name} --help$`));
  }
});

test("a command's own usage mistake is one line pointing at its help", async () => {
  const fee = await runInProcess(["fee", "--tariff", "x.json"]);
  assert.equal(fee.code, 2);
  assert.equal(fee.stderr, 'lanekeeper fee: --enter "YYYY-MM-DD HH:mm:ss" is required; see lanekeeper fee --help');
  const emulatorCall = await runInProcess(["emulator", "call", "queryFreeSpace", "--to", "http://127.0.0.1:9/", "--biz", '{"a": x}']);
  assert.equal(emulatorCall.code, 2);
  assert.equal(emulatorCall.stderr, "lanekeeper emulator call: --biz is not JSON: --biz:1:7: unexpected 'x' where a value was expected; see lanekeeper emulator call --help");
});
