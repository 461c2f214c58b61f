import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * The installed project's root: the nearest directory above this module that holds
 * lanekeeper's own package.json. A file the runtime ships beside its code (the panel, the demo
 * config, package.json) is found from here, never from `import.meta.url` plus a fixed number
 * of `../`: the same module runs from src/ (tsx), dist/ (tsc) and dist/bundle/ (the bundled
 * service, scripts/bundle-service.ts), each at a different depth.
 */
const PROJECT_NAME = "lanekeeper";

let found: string | undefined;

function isProjectRoot(dir: string): boolean {
  const file = join(dir, "package.json");
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === PROJECT_NAME;
  } catch {
    return false;
  }
}

/** The project root (absolute path); looked up once. */
export function projectDir(): string {
  if (found !== undefined) return found;
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    if (isProjectRoot(dir)) return (found = dir);
    if (dirname(dir) === dir) break;
  }
  // No package.json above (a copied file): where it sits in the sources, src/kernel/.
  return (found = join(here, "..", ".."));
}

/** A path inside the project, as a file URL (a trailing "/" names a directory). */
export function projectUrl(relativePath: string): URL {
  return new URL(relativePath, pathToFileURL(`${projectDir()}/`));
}
