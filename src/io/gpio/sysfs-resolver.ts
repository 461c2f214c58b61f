/**
 * BCM line → sysfs GPIO number (hw/wiring.md §4).
 *
 * The sysfs interface numbers every line globally: `<chip base> + <offset on the chip>`. Up to
 * kernel 6.5 the SoC's pin controller on a Raspberry Pi had base 0, so "GPIO 17" was sysfs 17.
 * Raspberry Pi OS kernels from 6.6 allocate bases dynamically from 512: the pin controller is
 * `gpiochip512` on a Pi 3/4 and `gpiochip571` on a Pi 5 (whose header is on the RP1 chip),
 * and exporting the bare BCM number fails with EINVAL. So the adapter never assumes a base: it
 * finds the chip whose `label` is the SoC pin controller under `<sysfsRoot>/gpiochip*` and adds
 * its `base`. The root is a parameter so tests run this against fake trees.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { GpioError, type GpioLineSpec } from "./gpio.js";

/** Pin-controller labels of the boards we support, most specific first. */
export const knownPinControllerLabels = [
  "pinctrl-rp1", // Pi 5 (the 40-pin header is wired to RP1)
  "pinctrl-bcm2711", // Pi 4, Pi 400, CM4
  "pinctrl-bcm2835", // Pi 1/2/3, Zero, Zero 2 W, CM3
] as const;

export const defaultSysfsRoot = "/sys/class/gpio";

export interface GpioChipInfo {
  /** Directory name, e.g. `gpiochip512`. */
  name: string;
  label: string;
  base: number;
  ngpio: number;
}

export interface ResolvedLine {
  key: string;
  bcm: number;
  sysfs: number;
  direction: "in" | "out";
  activeLow: boolean;
}

export interface SysfsResolution {
  sysfsRoot: string;
  chip: GpioChipInfo;
  lines: ResolvedLine[];
}

export async function listGpioChips(sysfsRoot: string): Promise<GpioChipInfo[]> {
  let names: string[];
  try {
    names = (await readdir(sysfsRoot)).filter((n) => /^gpiochip\d+$/.test(n));
  } catch (error) {
    throw new GpioError("E_GPIO_CHIP", `cannot list ${sysfsRoot}: ${(error as Error).message} (is the sysfs GPIO interface enabled in this kernel?)`);
  }
  const chips: GpioChipInfo[] = [];
  for (const name of names.sort(byNumber)) {
    const dir = join(sysfsRoot, name);
    try {
      const [label, base, ngpio] = await Promise.all([readText(join(dir, "label")), readText(join(dir, "base")), readText(join(dir, "ngpio"))]);
      const baseNumber = Number(base);
      const count = Number(ngpio);
      if (!Number.isInteger(baseNumber) || baseNumber < 0 || !Number.isInteger(count) || count <= 0) continue;
      chips.push({ name, label, base: baseNumber, ngpio: count });
    } catch {
      // A chip directory without readable attributes is not one we can use; skip it.
    }
  }
  return chips;
}

/** The SoC's pin controller among `chips`, or the one labelled `chipLabel` when configured. */
export function pickPinController(chips: readonly GpioChipInfo[], chipLabel?: string, sysfsRoot = defaultSysfsRoot): GpioChipInfo {
  const seen = chips.map((c) => `${c.name} "${c.label}" base ${c.base}`).join(", ") || "none";
  if (chipLabel) {
    const chip = chips.find((c) => c.label === chipLabel);
    if (!chip) throw new GpioError("E_GPIO_CHIP", `no gpiochip labelled "${chipLabel}" under ${sysfsRoot} (found: ${seen})`);
    return chip;
  }
  for (const label of knownPinControllerLabels) {
    const chip = chips.find((c) => c.label === label);
    if (chip) return chip;
  }
  throw new GpioError("E_GPIO_CHIP", `no known pin controller (${knownPinControllerLabels.join(", ")}) under ${sysfsRoot} (found: ${seen}); set hardware.chipLabel`);
}

export function resolveOnChip(lines: readonly GpioLineSpec[], chip: GpioChipInfo): ResolvedLine[] {
  const byLine = new Map<number, string>();
  return lines.map((spec) => {
    if (!Number.isInteger(spec.line) || spec.line < 0 || spec.line >= chip.ngpio) {
      throw new GpioError("E_GPIO_CHIP", `${spec.key}: BCM line ${spec.line} is not on ${chip.name} "${chip.label}" (lines 0..${chip.ngpio - 1})`);
    }
    const other = byLine.get(spec.line);
    if (other !== undefined) throw new GpioError("E_GPIO_EXPORT", `${spec.key}: BCM line ${spec.line} is already used by ${other}`);
    byLine.set(spec.line, spec.key);
    return { key: spec.key, bcm: spec.line, sysfs: chip.base + spec.line, direction: spec.direction, activeLow: spec.activeLow };
  });
}

export async function resolveSysfsLines(lines: readonly GpioLineSpec[], options: { sysfsRoot?: string; chipLabel?: string | undefined } = {}): Promise<SysfsResolution> {
  const sysfsRoot = options.sysfsRoot ?? defaultSysfsRoot;
  const chips = await listGpioChips(sysfsRoot);
  const chip = pickPinController(chips, options.chipLabel || undefined, sysfsRoot);
  return { sysfsRoot, chip, lines: resolveOnChip(lines, chip) };
}

async function readText(path: string): Promise<string> {
  return (await readFile(path, "utf8")).trim();
}

function byNumber(a: string, b: string): number {
  return Number(a.replace(/\D/g, "")) - Number(b.replace(/\D/g, ""));
}
