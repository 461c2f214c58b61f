/**
 * The long crash-safety run of the store: `node --import tsx scripts/crash-store.ts [rounds] [dir]`
 * (default 1,000 rounds in a fresh temp dir). Each round starts a writer process on the same
 * directory, SIGKILLs it at a random moment and checks that everything it acknowledged is
 * there. Prints one JSON line per 50 rounds and a summary; exits 1 on the first loss.
 * Not part of `npm test` (it takes minutes); the test runs the same harness 50 times.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crashRounds, prepareWriter, seededRandom } from "../test/helpers/store-crash-harness.js";

const rounds = Number(process.argv[2] ?? 1000);
const givenDir = process.argv[3];
const seed = Number(process.env.LANEKEEPER_CRASH_SEED ?? Date.now() % 1_000_000);
const dir = givenDir ?? (await mkdtemp(join(tmpdir(), "lk-crash-store-")));
const writer = await prepareWriter();
const begun = performance.now();
let duringStartup = 0;
const { ack, results } = await crashRounds({
  rounds,
  dir,
  writer,
  random: seededRandom(seed),
  onRound: (r) => {
    if (!r.sawReady) duringStartup++;
    if (r.problems.length > 0) console.log(JSON.stringify({ figure: "crash-store-loss", round: r.round, seed, problems: r.problems.slice(0, 20) }));
    else if (r.round % 50 === 0)
      console.log(
        JSON.stringify({ figure: "crash-store-progress", round: r.round, acknowledged: r.acknowledgedThisRound, elapsedS: Math.round((performance.now() - begun) / 1000) }),
      );
  },
});
await writer.cleanup();
const failed = results.some((r) => r.problems.length > 0);
console.log(
  JSON.stringify({
    figure: "crash-store",
    rounds: results.length,
    ok: !failed,
    seed,
    writer: writer.how,
    killedDuringStartup: duringStartup,
    acknowledged: { stays: ack.added.size, finished: ack.finished.size, reports: ack.queued.size, payments: ack.payments.size, vehicles: ack.vehicles.size },
    elapsedS: Math.round((performance.now() - begun) / 1000),
    dir: givenDir ?? "(removed)",
  }),
);
if (!givenDir && !failed) await rm(dir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
