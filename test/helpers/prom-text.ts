/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), written here
 * rather than taken from the library under test: every line must be empty, a `# HELP`, a `# TYPE`
 * or a sample `name{label="value",...} number`, label values with only the three escapes
 * the format allows (\\, \", \n). Anything else throws, naming the line.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  helps: Map<string, string>;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line.slice(0, 120))}`;
    if (line.startsWith("# HELP ")) {
      const [, name, help] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
      if (!name || !metricName.test(name) || help === undefined) throw new Error(`bad HELP, ${where}`);
      helps.set(name, help);
      return;
    }
    if (line.startsWith("# TYPE ")) {
      const [, name, type] = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? [];
      if (!name || !type || !metricName.test(name)) throw new Error(`bad TYPE, ${where}`);
      if (types.has(name)) throw new Error(`second TYPE for ${name}, ${where}`);
      types.set(name, type);
      return;
    }
    // Empty lines are ignored by the format (prom-client puts one between metrics).
    if (line === "") return;
    if (line.startsWith("#") || line.trim() === "") throw new Error(`unexpected line, ${where}`);
    samples.push(parseSample(line, where));
  });
  return { samples, types, helps };
}

function parseSample(line: string, where: string): Sample {
  let i = 0;
  while (i < line.length && line[i] !== "{" && line[i] !== " ") i++;
  const name = line.slice(0, i);
  if (!metricName.test(name)) throw new Error(`bad metric name, ${where}`);
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    while (line[i] !== "}") {
      const eq = line.indexOf("=", i);
      if (eq < 0) throw new Error(`label without =, ${where}`);
      const label = line.slice(i, eq);
      if (!labelName.test(label)) throw new Error(`bad label name ${JSON.stringify(label)}, ${where}`);
      if (line[eq + 1] !== '"') throw new Error(`label value not quoted, ${where}`);
      let value = "";
      let j = eq + 2;
      for (;;) {
        const c = line[j];
        if (c === undefined) throw new Error(`unterminated label value, ${where}`);
        if (c === '"') break;
        if (c === "\\") {
          const next = line[j + 1];
          if (next === "\\") value += "\\";
          else if (next === '"') value += '"';
          else if (next === "n") value += "\n";
          else throw new Error(`bad escape \\${next ?? ""}, ${where}`);
          j += 2;
          continue;
        }
        value += c;
        j++;
      }
      if (Object.hasOwn(labels, label)) throw new Error(`label ${label} twice, ${where}`);
      labels[label] = value;
      i = j + 1;
      if (line[i] === ",") i++;
      else if (line[i] !== "}") throw new Error(`expected , or } after a label, ${where}`);
    }
    i++;
  }
  const rest = line.slice(i);
  const match = /^ (\S+)( -?\d+)?$/.exec(rest);
  if (!match) throw new Error(`bad value part, ${where}`);
  const text = match[1]!;
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  const value = special ? (special[2]!.toLowerCase() === "nan" ? NaN : special[1] === "-" ? -Infinity : Infinity) : Number(text);
  if (Number.isNaN(value) && !special) throw new Error(`value is not a number, ${where}`);
  return { name, labels, value };
}

/** The value of one series (0 when absent: a counter that never moved has no sample yet). */
export function sampleValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  const found = exposition.samples.filter((s) => s.name === name && wanted.every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === wanted.length);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value ?? 0;
}

/** The sum over every series of `name` whose labels include `labels`. */
export function sampleSum(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  return exposition.samples.filter((s) => s.name === name && wanted.every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}
