import { execFile } from "node:child_process";
import { access, cp, lstat, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { delimiter, dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { defaultAppFiles } from "./bundle.js";
import { readElfHeader } from "./elf.js";
import type { Architecture, NativeFile } from "./manifest.js";
import { nativeFilesOf, readFileHead, type FileHead } from "./native.js";

const run = promisify(execFile);

/**
 * Stages the built app for one target architecture, ready to bundle: dist/, package.json and the
 * production packages only (the lockfile tells them from dev ones), with every native addon made
 * for the target. Addons that ship prebuilt binaries (serialport's bindings) keep only the
 * target's; the others (epoll, under onoff) are compiled here with node-gyp against the local
 * Node headers, with Debian's cross compilers when the target is not this machine. Compiler
 * leftovers are removed, and every ELF file is checked against the target at the end.
 */

/** A problem with the build machine or the staged tree (not a job error: nothing reaches a box). */
export class ReleaseBuildError extends Error {
  override readonly name = "ReleaseBuildError";
  constructor(
    readonly code: "E_TOOLCHAIN" | "E_STAGE" | "E_NATIVE_BUILD" | "E_WRONG_ARCH",
    message: string,
  ) {
    super(message);
  }
}

interface Target {
  /** node-gyp's --arch and the name under prebuilds/linux-<arch>. */
  nodeArch: "arm64" | "arm" | "x64";
  /** Debian's cross toolchain prefix. */
  toolchainPrefix: string;
  /** The Debian package that provides it (named in the error when it is missing). */
  toolchainPackage: string;
}

const targets: Record<Architecture, Target> = {
  arm64: { nodeArch: "arm64", toolchainPrefix: "aarch64-linux-gnu-", toolchainPackage: "g++-aarch64-linux-gnu" },
  armhf: { nodeArch: "arm", toolchainPrefix: "arm-linux-gnueabihf-", toolchainPackage: "g++-arm-linux-gnueabihf" },
  x64: { nodeArch: "x64", toolchainPrefix: "x86_64-linux-gnu-", toolchainPackage: "g++-x86-64-linux-gnu" },
};

export interface StageOptions {
  /** The project: dist/ (built), package.json, package-lock.json, node_modules/. */
  projectDir: string;
  /** Created; must not exist. */
  stageDir: string;
  architecture: Architecture;
  /** Directory holding include/node/ (default: this Node's install prefix). */
  nodeDir?: string;
  /** node-gyp's bin/node-gyp.js (default: the copy inside npm). */
  nodeGyp?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** The machine the build runs on (default `process.arch`); tests only. */
  hostArch?: string;
  /** Environment for the compilers (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

export interface StagedRelease {
  stageDir: string;
  /** Every ELF file in the stage (all for the target). */
  native: Array<Pick<NativeFile, "path" | "machine">>;
  /** Packages whose addon was compiled here, and those whose prebuilt binary was picked. */
  compiled: string[];
  prebuilt: string[];
  /** NODE_MODULE_VERSION of the headers the addons were compiled against. */
  nodeModuleVersion: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The Node headers' install prefix and their NODE_MODULE_VERSION. */
export async function findNodeHeaders(nodeDir?: string): Promise<{ nodeDir: string; nodeModuleVersion: string }> {
  const candidates = nodeDir ? [nodeDir] : [process.env.npm_config_nodedir, dirname(dirname(process.execPath)), "/usr"].filter((d): d is string => Boolean(d));
  for (const dir of candidates) {
    let header: string;
    try {
      header = await readFile(join(dir, "include", "node", "node_version.h"), "utf8");
    } catch {
      continue;
    }
    const abi = /#define NODE_MODULE_VERSION (\d+)/.exec(header)?.[1];
    if (abi && (await exists(join(dir, "include", "node", "common.gypi")))) return { nodeDir: dir, nodeModuleVersion: abi };
  }
  throw new ReleaseBuildError("E_TOOLCHAIN", `no Node headers (include/node/node_version.h and common.gypi) under ${candidates.join(", ")}; pass --nodedir`);
}

/** node-gyp's entry script: given, from npm's environment, or the copy that ships inside npm. */
export async function findNodeGyp(given?: string): Promise<string> {
  const prefix = dirname(dirname(process.execPath));
  const candidates = given
    ? [given]
    : [
        process.env.npm_config_node_gyp,
        join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
        "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
        "/usr/share/nodejs/node-gyp/bin/node-gyp.js",
      ].filter((c): c is string => Boolean(c));
  for (const candidate of candidates) if (await exists(candidate)) return candidate;
  throw new ReleaseBuildError("E_TOOLCHAIN", `node-gyp not found (looked at ${candidates.join(", ")}); pass --node-gyp <path to bin/node-gyp.js>`);
}

async function onPath(command: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  for (const dir of (env.PATH ?? "").split(delimiter).filter(Boolean)) if (await exists(join(dir, command))) return true;
  return false;
}

/** CC/CXX/LINK/AR for node-gyp: the cross toolchain, or nothing when building for this machine. */
async function compilerEnv(architecture: Architecture, hostArch: string, env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const target = targets[architecture];
  if (target.nodeArch === hostArch) return { ...env };
  const p = target.toolchainPrefix;
  for (const tool of [`${p}gcc`, `${p}g++`, `${p}ar`]) {
    if (!(await onPath(tool, env))) {
      throw new ReleaseBuildError(
        "E_TOOLCHAIN",
        `${tool} is not installed; building ${architecture} addons needs the cross compiler (apt-get install ${target.toolchainPackage} ${target.toolchainPackage.replace(/^g\+\+/, "gcc")})`,
      );
    }
  }
  return { ...env, CC: `${p}gcc`, CXX: `${p}g++`, LINK: `${p}g++`, AR: `${p}ar` };
}

/** Copies the production files of the project (dev packages and .bin links never enter). */
async function copyProductionTree(projectDir: string, stageDir: string): Promise<void> {
  const roots = await defaultAppFiles(projectDir);
  for (const root of roots) {
    const from = join(projectDir, root);
    await cp(from, join(stageDir, root), {
      recursive: true,
      verbatimSymlinks: true,
      // Nested node_modules are lockfile entries of their own (copied if they are production).
      filter: (source) => {
        const rel = relative(from, source);
        const parts = rel.split(/[\\/]/);
        return !parts.includes(".bin") && !(root.startsWith("node_modules/") && parts.includes("node_modules"));
      },
    });
  }
}

/** Package directories (relative to the stage) that hold a native addon: a binding.gyp. */
async function nativePackages(stageDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(join(stageDir, dir))).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const pkg = join(dir, name);
      if (name.startsWith("@")) {
        await walk(pkg);
        continue;
      }
      if (!(await lstat(join(stageDir, pkg))).isDirectory()) continue;
      if (await exists(join(stageDir, pkg, "binding.gyp"))) found.push(pkg);
      await walk(join(pkg, "node_modules"));
    }
  };
  await walk("node_modules");
  return found;
}

/** Every regular file under dir with its first bytes (for the ELF check). */
async function fileHeads(root: string, dir = ""): Promise<FileHead[]> {
  const out: FileHead[] = [];
  for (const name of (await readdir(join(root, dir))).sort()) {
    const rel = dir ? `${dir}/${name}` : name;
    const st = await lstat(join(root, rel));
    if (st.isDirectory()) out.push(...(await fileHeads(root, rel)));
    else if (st.isFile()) out.push({ path: rel, sha256: "0".repeat(64), head: await readFileHead(join(root, rel)) });
  }
  return out;
}

/** `.node` files directly in build/Release built for the target (a usable earlier build). */
async function targetBuildPresent(pkgDir: string, architecture: Architecture): Promise<boolean> {
  const release = join(pkgDir, "build", "Release");
  let names: string[];
  try {
    names = await readdir(release);
  } catch {
    return false;
  }
  const addons = names.filter((n) => n.endsWith(".node"));
  if (addons.length === 0) return false;
  for (const name of addons) if (readElfHeader(await readFileHead(join(release, name)))?.architecture !== architecture) return false;
  return true;
}

/** Leaves only build/Release/*.node: object files, .deps, Makefiles and config are leftovers. */
async function pruneBuildDir(pkgDir: string): Promise<void> {
  const build = join(pkgDir, "build");
  if (!(await exists(build))) return;
  for (const name of await readdir(build)) if (name !== "Release") await rm(join(build, name), { recursive: true, force: true });
  const release = join(build, "Release");
  if (!(await exists(release))) return;
  for (const name of await readdir(release)) {
    const keep = name.endsWith(".node") && (await lstat(join(release, name))).isFile();
    if (!keep) await rm(join(release, name), { recursive: true, force: true });
  }
}

export async function stageRelease(options: StageOptions): Promise<StagedRelease> {
  const { stageDir, architecture } = options;
  const log = options.log ?? (() => undefined);
  const env = options.env ?? process.env;
  const target = targets[architecture];
  const hostArch = options.hostArch ?? process.arch;
  if (await exists(stageDir)) throw new ReleaseBuildError("E_STAGE", `${stageDir} already exists; staging needs a fresh directory`);
  await mkdir(stageDir, { recursive: true });
  await copyProductionTree(options.projectDir, stageDir);
  log(`staged the production files of ${options.projectDir} for ${architecture}`);

  const compiled: string[] = [];
  const prebuilt: string[] = [];
  let headers: { nodeDir: string; nodeModuleVersion: string } | undefined;
  for (const pkg of await nativePackages(stageDir)) {
    const pkgDir = join(stageDir, pkg);
    const prebuildDir = join(pkgDir, "prebuilds");
    const wanted = `linux-${target.nodeArch}`;
    if (await exists(join(prebuildDir, wanted))) {
      // node-gyp-build tries build/Release before prebuilds/: a local build must not shadow them.
      for (const name of await readdir(prebuildDir)) if (name !== wanted) await rm(join(prebuildDir, name), { recursive: true, force: true });
      await rm(join(pkgDir, "build"), { recursive: true, force: true });
      prebuilt.push(pkg);
      log(`${pkg}: prebuilt ${wanted}`);
      continue;
    }
    await rm(prebuildDir, { recursive: true, force: true });
    if (await targetBuildPresent(pkgDir, architecture)) {
      await pruneBuildDir(pkgDir);
      prebuilt.push(pkg);
      log(`${pkg}: already built for ${architecture}`);
      continue;
    }
    headers ??= await findNodeHeaders(options.nodeDir);
    const nodeGyp = await findNodeGyp(options.nodeGyp);
    const compileEnv = await compilerEnv(architecture, hostArch, env);
    await rm(join(pkgDir, "build"), { recursive: true, force: true });
    log(`${pkg}: compiling for ${architecture} (node-gyp --arch=${target.nodeArch}${compileEnv.CXX ? `, ${compileEnv.CXX}` : ""})`);
    try {
      await run(process.execPath, [nodeGyp, "rebuild", `--arch=${target.nodeArch}`, `--nodedir=${headers.nodeDir}`], { cwd: pkgDir, env: compileEnv, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? "");
      const tail = stderr.trim().split("\n").slice(-8).join("\n");
      throw new ReleaseBuildError("E_NATIVE_BUILD", `${pkg}: node-gyp rebuild for ${architecture} failed: ${(error as Error).message.split("\n")[0]}\n${tail}`);
    }
    await pruneBuildDir(pkgDir);
    compiled.push(pkg);
  }

  const native = nativeFilesOf(await fileHeads(stageDir));
  const wrong = native.filter((n) => n.machine !== architecture);
  if (wrong.length > 0) {
    throw new ReleaseBuildError(
      "E_WRONG_ARCH",
      `the ${architecture} stage still holds native files for other machines: ${wrong.map((n) => `${n.path} (${n.machine})`).join(", ")}`,
    );
  }
  headers ??= await findNodeHeaders(options.nodeDir).catch(() => ({ nodeDir: "", nodeModuleVersion: process.versions.modules }));
  return { stageDir, native: native.map(({ path, machine }) => ({ path, machine })), compiled, prebuilt, nodeModuleVersion: headers.nodeModuleVersion };
}
