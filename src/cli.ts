#!/usr/bin/env node
import { deferOptimisingUntilReady } from "./kernel/start-up-tiering.js";
import { runCli } from "./cli/main.js";

// Before any command's modules load (each is imported when run): see start-up-tiering.ts.
deferOptimisingUntilReady();
process.exitCode = await runCli(process.argv.slice(2));
