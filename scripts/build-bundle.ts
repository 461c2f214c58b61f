// Kept for existing habits; the command is `lanekeeper release build` (same options):
//   node --import tsx scripts/build-bundle.ts --arch arm64 --key keys/release.private.pem --out out/
import { releaseBuildCommand, runAsScript } from "../src/cli/release-build.js";

process.exitCode = await runAsScript(releaseBuildCommand, process.argv.slice(2));
