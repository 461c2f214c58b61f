/**
 * The platform emulator in a process of its own, for the lane-flow bench: the cloud is never
 * in the lane controller's process, and in-process its request handling would run on the
 * lane's event loop, adding the platform's own work to the lane's figures. Takes the pid and
 * key as arguments, prints its URL as the first stdout line, stops on SIGTERM, lifts its
 * faults on SIGUSR2 and then prints `cleared` once it listens again. The bench drives it
 * through its control API (`/_emulator/...`).
 */
import { startEmulator } from "../src/platform/emulator/emulator.js";

const [pid, key] = process.argv.slice(2);
if (!pid || !key) {
  console.error("usage: emulator-process.ts <pid> <key>");
  process.exit(2);
}
// A `refuse` fault closes the listening socket, and with it the only handle that kept the
// event loop alive (signal listeners and a piped stdout do not): the process would exit
// with status 0 and the bench's later SIGUSR2 would find nobody to lift the fault. This
// timer holds the process until SIGTERM.
const keepAlive = setInterval(() => undefined, 1 << 30);
const emulator = await startEmulator({
  pid,
  key,
  // The lane signs with the bench's FakeClock, which runs hours ahead during the run: the
  // timestamp window would reject it, and that check is not what is measured here.
  timestampWindowS: 0,
});
console.log(emulator.url);
// While refusing connections the control API is unreachable too: a signal lifts the faults,
// and the line that follows tells the bench the listener is back (no guessing with a sleep).
process.on("SIGUSR2", () => {
  emulator.clearFaults().then(
    () => console.log("cleared"),
    (error: unknown) => console.error(`clearing faults failed: ${String(error)}`),
  );
});
process.once("SIGTERM", () => {
  clearInterval(keepAlive);
  void emulator.stop().finally(() => process.exit(0));
});
