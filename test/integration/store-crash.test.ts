import { test } from "node:test";
import assert from "node:assert/strict";
import { crashRounds, prepareWriter, seededRandom } from "../helpers/store-crash-harness.js";
import { freshDir } from "../helpers/store-fixtures.js";

/*
 * Crash safety on real processes: a child writes stays, payments, vehicles and
 * outbox entries in a loop and prints each one after its durable write returned; it is
 * SIGKILLed at a random moment (during start-up and recovery in about one round in five),
 * and after each kill the store is loaded here and every acknowledged write must be there.
 * The 1,000-round version is scripts/crash-store.ts.
 */
const ROUNDS = 50;

test(`SIGKILL at random moments ${ROUNDS} times: the store always loads and nothing acknowledged is lost`, async () => {
  const { dir, cleanup } = await freshDir("lk-crash-");
  const writer = await prepareWriter();
  const seed = Number(process.env.LANEKEEPER_CRASH_SEED ?? Date.now() % 1_000_000);
  try {
    const { ack, results } = await crashRounds({ rounds: ROUNDS, dir, writer, random: seededRandom(seed) });
    const failed = results.find((r) => r.problems.length > 0);
    assert.equal(failed, undefined, `round ${failed?.round} (seed ${seed}, replay with LANEKEEPER_CRASH_SEED): ${failed?.problems.slice(0, 5).join("; ")}`);
    assert.equal(results.length, ROUNDS);
    // The test only means something if the kills landed while writes were acknowledged.
    const productive = results.filter((r) => r.acknowledgedThisRound > 0).length;
    assert.ok(productive >= ROUNDS / 2, `only ${productive} of ${ROUNDS} rounds acknowledged writes before the kill`);
    assert.ok(
      ack.added.size > ROUNDS && ack.finished.size > 0 && ack.queued.size > ROUNDS,
      `acknowledged: ${ack.added.size} stays, ${ack.finished.size} finished, ${ack.queued.size} reports`,
    );
  } finally {
    await writer.cleanup();
    await cleanup();
  }
});
