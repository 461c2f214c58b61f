import type { Architecture } from "./manifest.js";

/**
 * Reading just enough of an ELF header to tell which machine a native file runs on. A bundle's
 * native addons (`*.node`, `*.so`) must match the box: an x86-64 `epoll.node` on a Pi means the
 * GPIO adapter cannot load, and that is only found out after the switch. Pure and total: any
 * bytes give an answer or undefined, never an exception.
 */

/** Bytes needed to read class, endianness, machine and flags of either ELF class. */
export const ELF_HEADER_BYTES = 52;

export interface ElfInfo {
  bits: 32 | 64;
  endian: "le" | "be";
  /** e_machine as stored. */
  machine: number;
  /** e_flags (the ARM float ABI lives here). */
  flags: number;
  /** The bundle's architecture name when this is one a box can run, else undefined. */
  architecture: Architecture | undefined;
  /** A short name for messages and the manifest: an architecture name or e.g. "x86 (ELF32)". */
  name: string;
}

const EM_386 = 0x03;
const EM_MIPS = 0x08;
const EM_PPC64 = 0x15;
const EM_ARM = 0x28;
const EM_X86_64 = 0x3e;
const EM_AARCH64 = 0xb7;
const EM_RISCV = 0xf3;
const EF_ARM_ABI_FLOAT_SOFT = 0x200;

const machineNames: Record<number, string> = {
  [EM_386]: "x86",
  [EM_MIPS]: "mips",
  [EM_PPC64]: "ppc64",
  [EM_ARM]: "arm",
  [EM_X86_64]: "x86-64",
  [EM_AARCH64]: "aarch64",
  [EM_RISCV]: "riscv",
};

/** True when the bytes start with the ELF magic (cheap test before parsing). */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

function u16(bytes: Uint8Array, at: number, le: boolean): number {
  const a = bytes[at]!;
  const b = bytes[at + 1]!;
  return le ? a | (b << 8) : (a << 8) | b;
}

function u32(bytes: Uint8Array, at: number, le: boolean): number {
  const lo = u16(bytes, le ? at : at + 2, le);
  const hi = u16(bytes, le ? at + 2 : at, le);
  return hi * 0x10000 + lo;
}

/**
 * The machine of an ELF file from its first bytes, or undefined when the bytes are not an ELF
 * header (too short, wrong magic, unknown class or byte order).
 */
export function readElfHeader(bytes: Uint8Array): ElfInfo | undefined {
  if (!isElf(bytes) || bytes.length < 20) return undefined;
  const elfClass = bytes[4];
  const data = bytes[5];
  if ((elfClass !== 1 && elfClass !== 2) || (data !== 1 && data !== 2)) return undefined;
  const bits = elfClass === 1 ? 32 : 64;
  const le = data === 1;
  const machine = u16(bytes, 18, le);
  // e_flags sits after e_entry, e_phoff and e_shoff, whose width depends on the class.
  const flagsAt = bits === 32 ? 36 : 48;
  const flags = bytes.length >= flagsAt + 4 ? u32(bytes, flagsAt, le) : 0;
  const architecture = architectureOf(bits, le, machine, flags);
  const base = machineNames[machine] ?? `machine 0x${machine.toString(16)}`;
  let name: string = architecture ?? `${base} (ELF${bits}${le ? "" : " big-endian"})`;
  if (!architecture && machine === EM_ARM && bits === 32 && le && (flags & EF_ARM_ABI_FLOAT_SOFT) !== 0) name = "armel (ELF32 soft-float)";
  return { bits, endian: le ? "le" : "be", machine, flags, architecture, name };
}

function architectureOf(bits: 32 | 64, le: boolean, machine: number, flags: number): Architecture | undefined {
  if (!le) return undefined;
  if (bits === 64 && machine === EM_AARCH64) return "arm64";
  if (bits === 64 && machine === EM_X86_64) return "x64";
  // A soft-float ARM binary cannot link against an armhf userland.
  if (bits === 32 && machine === EM_ARM && (flags & EF_ARM_ABI_FLOAT_SOFT) === 0) return "armhf";
  return undefined;
}

/** e_machine of each architecture (tests and the cross-build's final check). */
export const elfMachineOf: Record<Architecture, { machine: number; bits: 32 | 64 }> = {
  arm64: { machine: EM_AARCH64, bits: 64 },
  armhf: { machine: EM_ARM, bits: 32 },
  x64: { machine: EM_X86_64, bits: 64 },
};
