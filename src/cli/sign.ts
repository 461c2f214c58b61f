import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { parseEnvelope } from "../platform/envelope.js";
import { PlatformError } from "../platform/errors.js";
import { computeSign, maskSignTemp, signsEqual } from "../platform/sign.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const signOptions = {
  "key-file": { type: "string", value: "<file>", describe: "a file holding the platform key (preferred; surrounding whitespace is ignored)" },
  key: { type: "string", short: "k", value: "<key>", describe: "the platform key itself (kept in shell history and visible in ps: prefer --key-file)" },
} as const satisfies OptionSpecs;

/** Stable codes for what `sign` prints on a failure that is not a command-line mistake. */
const signErrorCode = { keyFile: "E_SIGN_KEY_FILE" } as const;

/**
 * The platform key from a file: trimmed (an editor adds a final newline; a key never starts
 * or ends with whitespace). Missing, unreadable and empty files are each one line.
 */
async function readKeyFile(file: string): Promise<{ ok: true; key: string } | { ok: false; message: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (error as Error).message;
    return { ok: false, message: `cannot read the key file ${file}: ${why}` };
  }
  const key = text.trim();
  if (key === "") return { ok: false, message: `the key file ${file} is empty` };
  return { ok: true, key };
}

/**
 * `lanekeeper sign`: the first thing an integrator needs when a platform says "sign error".
 * It signs the envelope exactly as a receiver verifies it (raw bizContent text, every
 * top-level field but sign, docs/protocol.md §2) and prints the string it hashed, with the key
 * masked as `&key=HIDDEN`.
 */
export const signCommand: CliCommand = {
  name: "sign",
  usage: "lanekeeper sign (--key-file <file> | --key <key>) <envelope file|->",
  summary: "print the signature of a platform envelope and the exact string it signed",
  options: signOptions,
  notes: [
    "<envelope file>: the JSON body as sent or received; - reads standard input.",
    "Exit 0 when the envelope has no sign or its sign matches, 1 when it does not match or cannot be read.",
  ],
  examples: ["lanekeeper sign --key-file platform.key request.json", "curl -s … | lanekeeper sign --key-file platform.key -"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: signOptions });
    if (values.key !== undefined && values["key-file"] !== undefined) throw new UsageError("give --key-file or --key, not both");
    if (values.key === undefined && values["key-file"] === undefined) throw new UsageError("--key-file <file> is required (the platform key)");
    if (positionals.length !== 1) throw new UsageError("give one envelope file, or - for standard input");
    const source = positionals[0]!;
    let key: string;
    if (values["key-file"] !== undefined) {
      const read = await readKeyFile(values["key-file"]);
      if (!read.ok) {
        console.error(`${signErrorCode.keyFile} ${read.message}`);
        return 1;
      }
      key = read.key;
    } else {
      key = values.key!;
      if (key === "") throw new UsageError("--key is empty");
    }
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
    const { sign, signTemp } = computeSign(envelope.signFields, key, envelope.signFieldName);
    console.log(`signTemp: ${maskSignTemp(signTemp, key)}`);
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
