/**
 * Fake sysfs GPIO trees in a temp dir, and a stand-in for the `onoff` module that works on
 * them: exporting checks the number against the chips' bases the way the kernel does (EINVAL
 * outside every chip), values honour active_low, and output→input loopback wires deliver edges
 * asynchronously like epoll does.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OnoffLine, OnoffModule } from "../../../../src/io/gpio/onoff-gpio.js";

export interface FakeChip {
  base: number;
  ngpio: number;
  label: string;
}

/** Raspberry Pi OS ≥ 6.6 on a Pi 4: pin controller at 512, the firmware expander after it. */
export const pi4Chips: FakeChip[] = [
  { base: 512, ngpio: 58, label: "pinctrl-bcm2711" },
  { base: 570, ngpio: 8, label: "raspberrypi-exp-gpio" },
];

/** Pi 5: SoC banks first, the header's RP1 controller at 571. */
export const pi5Chips: FakeChip[] = [
  { base: 512, ngpio: 32, label: "gpio-brcmstb@107d508500" },
  { base: 544, ngpio: 4, label: "gpio-brcmstb@107d508520" },
  { base: 548, ngpio: 17, label: "gpio-brcmstb@107d517c00" },
  { base: 565, ngpio: 6, label: "gpio-brcmstb@107d517c20" },
  { base: 571, ngpio: 54, label: "pinctrl-rp1" },
];

/** An older kernel on a Pi 3: base 0. */
export const oldKernelChips: FakeChip[] = [
  { base: 0, ngpio: 54, label: "pinctrl-bcm2835" },
  { base: 504, ngpio: 8, label: "raspberrypi-exp-gpio" },
];

export function makeFakeSysfs(chips: readonly FakeChip[]): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), "lk-sysfs-"));
  for (const chip of chips) {
    const dir = join(root, `gpiochip${chip.base}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "base"), `${chip.base}\n`);
    writeFileSync(join(dir, "ngpio"), `${chip.ngpio}\n`);
    writeFileSync(join(dir, "label"), `${chip.label}\n`);
  }
  writeFileSync(join(root, "export"), "");
  writeFileSync(join(root, "unexport"), "");
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

export interface FakeOnoff {
  module: OnoffModule;
  /** Raw (electrical) level per sysfs number. */
  raw: Map<number, 0 | 1>;
  /** Raw level each output had at the moment it was claimed. */
  claimedRaw: Map<number, 0 | 1>;
  exported: Set<number>;
  unexported: number[];
  /** Sysfs numbers that fail to export with EBUSY. */
  busy: Set<number>;
  /** Sets an input's raw level from outside (a detector's relay). */
  setRaw(sysfs: number, level: 0 | 1): void;
}

/** `wires`: output sysfs number → input sysfs number (loopback jumpers). */
export function fakeOnoff(root: string, chips: readonly FakeChip[], wires: ReadonlyMap<number, number> = new Map()): FakeOnoff {
  const raw = new Map<number, 0 | 1>();
  const claimedRaw = new Map<number, 0 | 1>();
  const exported = new Set<number>();
  const unexported: number[] = [];
  const busy = new Set<number>();
  const lines = new Map<number, FakeLine>();

  const setRaw = (sysfs: number, level: 0 | 1): void => {
    const before = raw.get(sysfs) ?? 0;
    raw.set(sysfs, level);
    const line = lines.get(sysfs);
    if (line) writeFileSync(join(root, `gpio${sysfs}`, "value"), `${line.readSync()}\n`);
    if (before !== level && line) line.interrupt();
  };

  class FakeLine implements OnoffLine {
    static accessible = true;
    private readonly dir: string;
    private readonly activeLow: boolean;
    private readonly direction: "in" | "out";
    private listeners: ((err: Error | null | undefined, value: 0 | 1) => void)[] = [];
    private closed = false;

    constructor(
      private readonly gpio: number,
      direction: "in" | "out" | "high" | "low",
      edge?: string,
      options?: { activeLow?: boolean },
    ) {
      if (!chips.some((c) => gpio >= c.base && gpio < c.base + c.ngpio)) throw errno("EINVAL", `invalid argument, write '${gpio}' to ${root}/export`);
      if (busy.has(gpio)) throw errno("EBUSY", `resource busy or locked, write '${gpio}' to ${root}/export`);
      this.dir = join(root, `gpio${gpio}`);
      appendFileSync(join(root, "export"), `${gpio}\n`);
      if (!existsSync(this.dir)) mkdirSync(this.dir);
      this.activeLow = options?.activeLow === true;
      this.direction = direction === "in" ? "in" : "out";
      writeFileSync(join(this.dir, "active_low"), this.activeLow ? "1" : "0");
      writeFileSync(join(this.dir, "direction"), this.direction);
      writeFileSync(join(this.dir, "edge"), edge ?? "none");
      if (direction !== "in") {
        // The kernel applies "high"/"low"/"out" as raw levels, before active_low.
        const initial: 0 | 1 = direction === "high" ? 1 : 0;
        claimedRaw.set(gpio, initial);
        this.driveRaw(initial);
      } else if (!raw.has(gpio)) {
        raw.set(gpio, 0);
      }
      writeFileSync(join(this.dir, "value"), `${this.readSync()}\n`);
      exported.add(gpio);
      lines.set(gpio, this);
    }

    readSync(): 0 | 1 {
      if (this.closed) throw errno("EBADF", "bad file descriptor");
      const level = raw.get(this.gpio) ?? 0;
      return (this.activeLow ? 1 - level : level) as 0 | 1;
    }

    writeSync(value: 0 | 1): void {
      if (this.closed) throw errno("EBADF", "bad file descriptor");
      if (this.direction !== "out") throw errno("EPERM", "operation not permitted");
      this.driveRaw((this.activeLow ? 1 - value : value) as 0 | 1);
      writeFileSync(join(this.dir, "value"), `${value}\n`);
    }

    watch(callback: (err: Error | null | undefined, value: 0 | 1) => void): void {
      this.listeners.push(callback);
    }

    unwatchAll(): void {
      this.listeners = [];
    }

    unexport(): void {
      this.unwatchAll();
      this.closed = true;
      lines.delete(this.gpio);
      exported.delete(this.gpio);
      unexported.push(this.gpio);
      appendFileSync(join(root, "unexport"), `${this.gpio}\n`);
      rmSync(this.dir, { recursive: true, force: true });
    }

    interrupt(): void {
      // epoll wakes the process later, and onoff reads the value then.
      setImmediate(() => {
        if (this.closed) return;
        const value = this.readSync();
        for (const listener of [...this.listeners]) listener(null, value);
      });
    }

    private driveRaw(level: 0 | 1): void {
      raw.set(this.gpio, level);
      const wired = wires.get(this.gpio);
      if (wired !== undefined) setRaw(wired, level);
    }
  }

  return { module: { Gpio: FakeLine }, raw, claimedRaw, exported, unexported, busy, setRaw };
}

export function readSysfs(root: string, path: string): string {
  return readFileSync(join(root, path), "utf8").trim();
}
