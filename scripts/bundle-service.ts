// The service's start-up bundle, the last step of `npm run build` (after tsc):
//   node --import tsx scripts/bundle-service.ts [--out <dist dir>]
//
// Why: `lanekeeper run` as tsc leaves it loads about 280 ES modules (173 of ours, 95 of zod)
// one file at a time; bundled, the start takes about a fifth less CPU (`npm run bench --
// process-start` prints both, the unbundled figures beside the bundled ones). esbuild
// bundles src/cli.ts with code splitting: dist/cli.js becomes the bundle's entry and the
// chunks go to dist/bundle/. The commands stay lazy (each is its own chunk, loaded when
// run), so `run` still does not load the emulator, the demo or the release tools. Files the
// runtime reads beside its code are found from the project root (src/kernel/project-dir.ts),
// whatever the depth of the chunk that asks.
//
// Left outside the bundle, loaded from node_modules as before: native addons (serialport,
// onoff/epoll), packages that find their own files on disk at run time (thread-stream's
// worker), undici (loaded by path after ready,
// src/platform/undici-core.ts), iconv-lite (its code tables load when a display first needs
// them, which a bundle would parse at every start) and the dev-only packages (aedes,
// playwright-core). pino is inside: the box's logger writes to stdout with no transport (a
// transport's worker is found by path and would need pino outside). Everything else of dist/
// stays as tsc wrote it: plain `tsc` (without this step) leaves a working unbundled
// dist/cli.js, and the benches and tests that import dist/ modules find them.
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Plugin } from "esbuild";

const EXTERNAL = ["serialport", "@serialport/*", "onoff", "epoll", "thread-stream", "undici", "iconv-lite", "aedes", "playwright-core"];

/**
 * zod's `z.locales` namespace carries the error messages of some forty languages (a third of
 * the zod code in the bundle, parsed at every start); the box uses zod's default, English
 * (which zod imports on its own), and never names a locale. The namespace keeps English only.
 */
const zodEnglishOnly: Plugin = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: join(dirname(args.importer), "..", "locales", "index.js"), namespace: "zod-english-only" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "zod-english-only" }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: dirname(args.path),
      loader: "js",
    }));
  },
};

// CommonJS packages inside an ES module bundle call `require` for node's built-ins: give them one.
const BANNER = 'import { createRequire as __lanekeeperCreateRequire } from "node:module";\nconst require = __lanekeeperCreateRequire(import.meta.url);';

export interface BundleResult {
  entry: string;
  chunks: number;
}

/** Bundles `<projectDir>/src/cli.ts` into `<outDir>/cli.js` and `<outDir>/bundle/`. */
export async function bundleService(projectDir: string, outDir: string): Promise<BundleResult> {
  const esbuild = await import("esbuild");
  await mkdir(outDir, { recursive: true });
  // Built beside the target and moved in whole: a failed build leaves dist/ as tsc wrote it.
  const work = await mkdtemp(join(outDir, ".bundle-"));
  try {
    const result = await esbuild.build({
      entryPoints: { cli: join(projectDir, "src", "cli.ts") },
      outdir: work,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node20",
      chunkNames: "bundle/[name]-[hash]",
      external: EXTERNAL,
      banner: { js: BANNER },
      // Function and class names kept: they are in stack traces and error names.
      keepNames: true,
      legalComments: "none",
      logLevel: "error",
      metafile: true,
      plugins: [zodEnglishOnly],
    });
    const chunks = Object.keys(result.metafile.outputs).filter((file) => file.includes("/bundle/")).length;
    await rm(join(outDir, "bundle"), { recursive: true, force: true });
    await rename(join(work, "bundle"), join(outDir, "bundle"));
    const entry = join(outDir, "cli.js");
    // The entry keeps the mode tsc's cli.js had (the release bundle marks it executable).
    const mode = await stat(entry).then(
      (s) => s.mode & 0o777,
      () => 0o755,
    );
    await rename(join(work, "cli.js"), entry);
    await chmod(entry, mode);
    for (const file of [entry, ...(await readdir(join(outDir, "bundle"))).map((name) => join(outDir, "bundle", name))]) await keepAscii(file, esbuild);
    return { entry, chunks };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * V8 keeps the source text of every module it loaded, one byte a character when the text is
 * all Latin-1 and two otherwise. esbuild escapes non-ASCII characters in strings but keeps the
 * comments it carries over (our `—`, `→`, `≤`), so the largest chunks were held as two-byte
 * strings: about 1 MB of the idle service's memory. Escaping them (`\uXXXX`) is safe in a
 * comment and changes nothing else only if the chunk's code, comments aside, is the same: that
 * is checked by comparing esbuild's minified output of both (a regular expression or a raw
 * template literal with such a character would differ, and its chunk is left as it was).
 */
export async function keepAscii(file: string, esbuild: typeof import("esbuild")): Promise<void> {
  if (!file.endsWith(".js")) return;
  const text = await readFile(file, "utf8");
  if (!/[^\x00-\x7F]/.test(text)) return;
  const escaped = text.replace(/[^\x00-\x7F]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const code = async (source: string): Promise<string> =>
    (await esbuild.transform(source, { minify: true, format: "esm", platform: "node", charset: "ascii", logLevel: "silent" })).code;
  if ((await code(text)) === (await code(escaped))) await writeFile(file, escaped);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const projectDir = resolve(import.meta.dirname, "..");
  const built = await bundleService(projectDir, resolve(values.out ?? join(projectDir, "dist")));
  console.log(`bundled ${built.entry} (+ ${built.chunks} chunks in bundle/)`);
}
