import { readFileSync } from "node:fs";
import { projectUrl } from "./kernel/project-dir.js";

/** The package version, read once at load (the release bundle carries package.json). */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(projectUrl("package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
})();
