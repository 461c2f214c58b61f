import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { commands } from "../../../src/cli/commands.js";
import { plan } from "../../../src/cli/main.js";
import { tempDir } from "../../helpers/demo-config.js";
import { runInProcess } from "./capture.js";

/*
 * Random command lines never end in a stack trace: exit 0, 1 or 2, and a mistake is one line.
 * LK_FUZZ_RUNS=N runs N command lines per property.
 */

const runs = Number(process.env.LK_FUZZ_RUNS ?? 150);

const demoConfig = fileURLToPath(new URL("../../../config/demo.json", import.meta.url));
const vendorTariff = fileURLToPath(new URL("../../fixtures/tariffs/vendor.json", import.meta.url));
const envelopeBody = (JSON.parse(readFileSync(new URL("../../fixtures/platform/doc-examples.json", import.meta.url), "utf8")) as { examples: Array<{ body: string }> }).examples[0]!
  .body;

const loaded = await Promise.all(commands.map((c) => c.load()));
const optionWords = [...new Set(loaded.flatMap((c) => Object.entries(c.options).flatMap(([name, spec]) => [`--${name}`, ...(spec.short ? [`-${spec.short}`] : [])])))];
const commandWords = [...new Set(commands.flatMap((c) => c.name.split(" ")))];

/** A word of a command line: an option some command takes, a command word, a flag-like or any text. */
const word = (random: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...optionWords) },
    { weight: 1, arbitrary: fc.constantFrom(...commandWords, "--", "-h", "--help", "help", "--version", "-x", "--x=1", "-ck") },
    { weight: 1, arbitrary: fc.constantFrom("{}", '{"a":1}', "[1,", "0", "-1", "500@2024-05-06 10:00:00", "2024-05-06 08:00:00", "small", "NaN", "a,b,,c") },
    { weight: 3, arbitrary: random },
    { weight: 1, arbitrary: random.map((text) => `--${text}`) },
  );

test("property: any command line is planned as help, a one-line mistake or a run, never a throw", async () => {
  const argv = fc.oneof(
    fc.array(word(fc.string({ maxLength: 12 })), { maxLength: 7 }),
    fc.tuple(fc.constantFrom(...commands.map((c) => c.name.split(" "))), fc.array(word(fc.string({ maxLength: 12 })), { maxLength: 7 })).map(([head, rest]) => [...head, ...rest]),
  );
  await fc.assert(
    fc.asyncProperty(argv, async (words) => {
      const decided = await plan(words);
      if (decided.kind === "run") return;
      assert.ok(decided.code === 0 || decided.code === 2);
      if (decided.code === 2) {
        assert.equal(decided.to, "stderr");
        assert.doesNotMatch(decided.text, /\n/, `${JSON.stringify(words)}: ${decided.text}`);
        assert.match(decided.text, /see lanekeeper( [a-z]+)* --help$/);
      }
    }),
    { numRuns: runs * 4 },
  );
});

// Commands that finish on their own whatever their words (no server, no broker, no stdin):
// these are run for real, in a scratch directory (keygen writes where --out points).
const finishing = ["fee", "sign", "config check", "release verify", "release keygen", "selftest", "emulator call"];

test("property: commands that finish on their own exit 0, 1 or 2 without a stack trace on random words", async () => {
  const scratch = tempDir("lk-argv-");
  const cwd = process.cwd();
  const savedConfig = process.env.LANEKEEPER_CONFIG;
  process.chdir(scratch);
  // selftest without --config reads this, never a real box's file.
  process.env.LANEKEEPER_CONFIG = "no-such-config.json";
  // Not "-": sign reads standard input for it, and a test has none to give.
  const text = fc.string({ maxLength: 10 }).filter((t) => t !== "-");
  // Values that get a command past its checks: real files, times, coupons; and junk.
  writeFileSync(join(scratch, "key.txt"), "0F1E2D3C4B5A69788796A5B4C3D2E1F0\n");
  writeFileSync(join(scratch, "envelope.json"), envelopeBody);
  writeFileSync(join(scratch, "empty.txt"), "");
  writeFileSync(join(scratch, "broken.json"), '{"fees": {"tariff": "a",}');
  const value = fc.oneof(
    fc.constantFrom(demoConfig, vendorTariff, "key.txt", "envelope.json", "empty.txt", "broken.json", "keys", "2024-05-06 08:00:00", "2024-05-06 11:30:00"),
    fc.constantFrom('{"kind":"free"}', '{"kind":"amount","fen":500}', "500@2024-05-06 09:00:00", "UTC", "Asia/Shanghai", "nev", "large", "standard", "queryFreeSpace", "arm64"),
    text,
  );
  const argv = fc
    .constantFrom(...finishing)
    .chain((name) => {
      const own = Object.keys(loaded[commands.findIndex((c) => c.name === name)]!.options).map((option) => `--${option}`);
      const loose = [value.map((v) => [v]), word(text).map((w) => [w])];
      // config check takes no option: only loose words.
      const part = own.length === 0 ? fc.oneof(...loose) : fc.oneof(fc.tuple(fc.constantFrom(...own), value), fc.tuple(fc.constantFrom(...own), value), ...loose);
      return fc.array(part, { maxLength: 6 }).map((parts) => [...name.split(" "), ...parts.flat()]);
    })
    // An http URL could reach a real address; the words above never make one, but say so.
    .filter((words) => !words.some((w) => /^https?:\/\/[^/]*[^\d./:]/.test(w)));
  const seen = new Set<number>();
  try {
    await fc.assert(
      fc.asyncProperty(argv, async (words) => {
        const result = await runInProcess(words);
        seen.add(result.code);
        assert.ok([0, 1, 2].includes(result.code), `${JSON.stringify(words)} exited ${result.code}`);
        assert.doesNotMatch(result.stderr, /^\s+at /m, `${JSON.stringify(words)}: a stack trace\n${result.stderr}`);
        assert.doesNotMatch(result.stderr, /E_CLI_UNEXPECTED/, `${JSON.stringify(words)}: an unexpected error\n${result.stderr}`);
        if (result.code === 2) assert.doesNotMatch(result.stderr, /\n/, `${JSON.stringify(words)}: one line\n${result.stderr}`);
      }),
      // One known success among the random lines, so the coverage check below never rests on luck.
      { numRuns: runs, examples: [[["config", "check", demoConfig]]] },
    );
    // The words reach past the option checks: some runs succeed, some fail on their input.
    assert.deepEqual([...seen].sort(), [0, 1, 2]);
  } finally {
    process.chdir(cwd);
    if (savedConfig === undefined) delete process.env.LANEKEEPER_CONFIG;
    else process.env.LANEKEEPER_CONFIG = savedConfig;
  }
});
