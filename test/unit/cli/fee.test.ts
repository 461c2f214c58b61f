import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../../src/cli/command.js";
import { feeCommand } from "../../../src/cli/fee.js";
import { runCli } from "../../helpers/child.js";
import { demoRaw, tempDir } from "../../helpers/demo-config.js";

/** `lanekeeper fee` in a real child process, as an installer runs it. */

const vendorFile = fileURLToPath(new URL("../../fixtures/tariffs/vendor.json", import.meta.url));
const demoFile = fileURLToPath(new URL("../../../config/demo.json", import.meta.url));

const enterLeave = ["--enter", "2024-05-06 08:00:00", "--leave", "2024-05-06 11:00:00"];

test("a bare tariff file and a whole config both print one JSON bill and exit 0", async () => {
  const [bare, config] = await Promise.all([runCli(["fee", "--tariff", vendorFile, ...enterLeave]), runCli(["fee", "--tariff", demoFile, ...enterLeave, "--vehicle", "large"])]);
  for (const run of [bare, config]) assert.equal(run.code, 0, run.stderr);

  const b = JSON.parse(bare.stdout);
  assert.deepEqual([b.payableFee, b.discountFee, b.paidFee], [700, 0, 700]);
  assert.deepEqual(Object.keys(b).slice(0, 4), ["payableFee", "discountFee", "paidFee", "breakdown"]);
  assert.deepEqual(
    b.breakdown.map((p: { from: string; to: string; kind: string; feeFen: number }) => [p.from, p.to, p.kind, p.feeFen]),
    [
      ["2024-05-06 08:00:00", "2024-05-06 09:00:00", "first-period", 500],
      ["2024-05-06 09:00:00", "2024-05-06 11:00:00", "units", 200],
    ],
  );
  assert.equal(b.yuan.payable, "7.00");
  assert.equal(b.stay.timeZone, "Asia/Shanghai");

  // The demo config's standard tariff is the vendor example; it has no large-car override.
  const c = JSON.parse(config.stdout);
  assert.equal(c.payableFee, 700);
  assert.equal(c.stay.vehicleType, "large");
});

test("the breakdown shows the stay's first period across day and night, without a segment", async () => {
  const file = fileURLToPath(new URL("../../fixtures/tariffs/first-period.json", import.meta.url));
  const run = await runCli(["fee", "--tariff", file, "--enter", "2024-05-06 18:00:00", "--leave", "2024-05-06 21:00:00"]);
  assert.equal(run.code, 0, run.stderr);
  const b = JSON.parse(run.stdout);
  assert.equal(b.payableFee, 300);
  assert.deepEqual(
    b.breakdown.map((p: { from: string; to: string; kind: string; segment?: string; feeFen: number }) => [p.from, p.to, p.kind, p.segment ?? null, p.feeFen]),
    [
      ["2024-05-06 18:00:00", "2024-05-06 20:00:00", "first-period", null, 300],
      ["2024-05-06 20:00:00", "2024-05-06 21:00:00", "flat", "night", 0],
    ],
  );
});

test("coupons, prepayments and the config's lot zone (in process)", async () => {
  const dir = tempDir("lk-fee-");
  const kolkata = demoRaw() as Record<string, any>;
  kolkata.lot.timeZone = "Asia/Kolkata";
  const kolkataFile = join(dir, "kolkata.json");
  writeFileSync(kolkataFile, JSON.stringify(kolkata));
  const zoned = await runInProcess(["--tariff", kolkataFile, ...enterLeave]);
  assert.equal(zoned.code, 0, zoned.stderr);
  assert.equal(JSON.parse(zoned.stdout).stay.timeZone, "Asia/Kolkata");
  const overridden = await runInProcess(["--tariff", kolkataFile, ...enterLeave, "--tz", "Asia/Shanghai"]);
  assert.equal(JSON.parse(overridden.stdout).stay.timeZone, "Asia/Shanghai");

  const extras = await runInProcess(["--tariff", vendorFile, ...enterLeave, "--coupon", '{"kind":"amount","fen":100}', "--prepaid", "500@2024-05-06 10:50:00"]);
  assert.equal(extras.code, 0, extras.stderr);
  const e = JSON.parse(extras.stdout);
  assert.deepEqual([e.payableFee, e.discountFee, e.prepaidFee, e.paidFee], [700, 100, 500, 100]);
  // --name picks another tariff of a config.
  const named = demoRaw() as Record<string, any>;
  named.fees.tariffs.flat = { segments: [{ name: "all day", from: "00:00", to: "24:00", flatFen: 1000 }] };
  const namedFile = join(dir, "named.json");
  writeFileSync(namedFile, JSON.stringify(named));
  const flat = await runInProcess(["--tariff", namedFile, ...enterLeave, "--name", "flat"]);
  assert.equal(JSON.parse(flat.stdout).payableFee, 1000);
  const missing = await runInProcess(["--tariff", namedFile, ...enterLeave, "--name", "nope"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no tariff named "nope" in fees\.tariffs \(has: standard, flat\)/);
});

test("a tariff with mistakes prints every problem with its path and exits 1", async () => {
  const dir = tempDir("lk-fee-");
  const badTariff = join(dir, "bad-tariff.json");
  writeFileSync(
    badTariff,
    JSON.stringify({
      segments: [
        { name: "day", from: "07:00", to: "19:00", unitMinutes: 60, unitPriceFen: -300, firstPeriod: { minutes: 2000, priceFen: 500 } },
        { name: "night", from: "18:00", to: "06:00", unitMinutes: 120, unitPriceFen: 100 },
      ],
      colour: "red",
    }),
  );
  const badConfig = join(dir, "bad-config.json");
  const raw = demoRaw() as Record<string, any>;
  raw.fees.tariffs.standard.segments[0].to = "20:00";
  writeFileSync(badConfig, JSON.stringify(raw));
  const notJson = join(dir, "not-json.json");
  writeFileSync(notJson, "{ segments: ");

  const tariffRun = await runCli(["fee", "--tariff", badTariff, ...enterLeave]);
  const configRun = await runInProcess(["--tariff", badConfig, ...enterLeave]);
  const jsonRun = await runInProcess(["--tariff", notJson, ...enterLeave]);
  const missingRun = await runInProcess(["--tariff", join(dir, "nope.json"), ...enterLeave]);
  assert.equal(tariffRun.code, 1);
  assert.equal(tariffRun.stdout, "");
  for (const path of ["segments[0].unitPriceFen", "segments[0].firstPeriod.minutes", "segments[1].from", "segments[1].to", "colour"]) {
    assert.match(tariffRun.stderr, new RegExp(`^  ${path.replace(/[[\].]/g, "\\$&")}: `, "m"), `missing ${path} in:\n${tariffRun.stderr}`);
  }
  assert.match(tariffRun.stderr, /5 problems/);
  assert.equal(configRun.code, 1);
  assert.match(configRun.stderr, /fees\.tariffs\.standard\.segments\[0\]\.to: leaves a gap/);
  assert.equal(jsonRun.code, 1);
  // A syntax error names its line and column: `{ segments: ` has an unquoted name at 1:3.
  assert.match(jsonRun.stderr, new RegExp(`^  ${notJson.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:1:3: expected a property name in double quotes, found 's'$`, "m"));
  assert.equal(missingRun.code, 1);
  assert.match(missingRun.stderr, /file not found/);
});

test("wrong words exit 2 with one line pointing at --help", async () => {
  // Two in a real child (the exit code comes from src/cli.ts) …
  const [backwards, unknownOption] = await Promise.all([
    runCli(["fee", "--tariff", vendorFile, "--enter", "2024-05-06 11:00:00", "--leave", "2024-05-06 08:00:00"]),
    runCli(["fee", "--tariff", vendorFile, ...enterLeave, "--colour", "red"]),
  ]);
  for (const [run, pattern] of [
    [backwards, /--leave \(2024-05-06 08:00:00\) is before --enter/],
    [unknownOption, /^lanekeeper fee: unknown option --colour; see lanekeeper fee --help\n$/],
  ] as const) {
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, pattern);
    assert.match(run.stderr, /^lanekeeper fee: .*; see lanekeeper fee --help\n$/);
    assert.equal(run.stdout, "");
  }
  // … the rest in process: each is a UsageError, which src/cli.ts turns into exit 2.
  const cases: Array<[string[], RegExp]> = [
    [["--tariff", vendorFile, "--enter", "2024-05-06 08:00:00"], /--leave .* is required/],
    [["--enter", "2024-05-06 08:00:00", "--leave", "2024-05-06 09:00:00"], /--tariff <file> is required/],
    [["--tariff", vendorFile, ...enterLeave, "extra"], /unexpected argument: extra/],
    [["--tariff", vendorFile, ...enterLeave, "--vehicle", "bus"], /unknown vehicle type "bus"/],
    [["--tariff", vendorFile, "--enter", "2024-02-30 08:00:00", "--leave", "2024-05-06 08:00:00"], /--enter: "2024-02-30 08:00:00" is not a time/],
    [["--tariff", vendorFile, ...enterLeave, "--coupon", "{kind:amount}"], /--coupon #1: not JSON/],
    [["--tariff", vendorFile, ...enterLeave, "--coupon", '{"kind":"percent","percent":150}'], /--coupon #1: percent: must be at most 100/],
    [["--tariff", vendorFile, ...enterLeave, "--prepaid", "five@10:00"], /--prepaid: "five@10:00" is not <fen>@<time>/],
    [["--tariff", vendorFile, ...enterLeave, "--prepaid", "500@2024-05-07 10:00:00"], /prepayment-outside-stay/],
    [["--tariff", vendorFile, ...enterLeave, "--tz", "Mars/Olympus"], /--tz: "Mars\/Olympus" is not an IANA time zone/],
    [["--tariff", vendorFile, ...enterLeave, "--name", "x"], /--name picks a tariff inside a config file/],
  ];
  for (const [args, pattern] of cases) {
    await assert.rejects(feeCommand.run(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")}: ${String(error)}`);
      assert.match(error.message, pattern, args.join(" "));
      return true;
    });
  }
});

/** Runs the command in this process, capturing what it prints. */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => void out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => void err.push(parts.join(" "));
  try {
    const code = await feeCommand.run(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}
