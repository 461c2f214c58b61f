import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { parseEnvelope } from "../platform/envelope.js";
import { PlatformError } from "../platform/errors.js";
import { computeSign, maskSignTemp, signsEqual } from "../platform/sign.js";
import { UsageError, type CliCommand } from "./command.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * `lanekeeper sign`: the first thing an integrator needs when a platform says "sign error".
 * It signs the envelope exactly as a receiver verifies it (raw bizContent text, every
 * top-level field but sign, docs/protocol.md §2) and prints the string it hashed, with the key
 * masked as `&key=HIDDEN`.
 */
export const signCommand: CliCommand = {
  name: "sign",
  usage: "lanekeeper sign --key <key> <file|->",
  summary: "print the signature of a platform envelope and the exact string it signed",
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { key: { type: "string", short: "k" } } });
    if (!values.key) throw new UsageError("--key is required");
    if (positionals.length !== 1) throw new UsageError("give one envelope file, or - for standard input");
    const source = positionals[0]!;
    let text: string;
    try {
      text = source === "-" ? await readStdin() : await readFile(source, "utf8");
    } catch (error) {
      console.error(`cannot read ${source}: ${(error as Error).message}`);
      return 1;
    }
    let envelope;
    try {
      envelope = parseEnvelope(text);
    } catch (error) {
      if (error instanceof PlatformError) {
        console.error(`${source}: ${error.message}`);
        return 1;
      }
      throw error;
    }
    const { sign, signTemp } = computeSign(envelope.signFields, values.key, envelope.signFieldName);
    console.log(`signTemp: ${maskSignTemp(signTemp, values.key)}`);
    console.log(`sign:     ${sign}`);
    console.log(`bizContent form: ${envelope.bizForm === "object" ? "object (signed over its exact text)" : "JSON string (signed over the decoded string)"}`);
    if (envelope.sign === undefined) {
      console.log("envelope: no sign present");
      return 0;
    }
    if (signsEqual(envelope.sign, sign)) {
      console.log(`envelope: sign ${envelope.sign} matches`);
      return 0;
    }
    console.log(`envelope: sign ${envelope.sign} does NOT match`);
    return 1;
  },
};
