// Kept for existing habits; the command is `lanekeeper release keygen` (same options):
//   node --import tsx scripts/keygen.ts --out keys/ [--id release-2025]
import { releaseKeygenCommand, runAsScript } from "../src/cli/release-build.js";

process.exitCode = await runAsScript(releaseKeygenCommand, process.argv.slice(2));
