import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { formatFen } from "../../../../src/core/fees/money.js";
import type { VehicleType } from "../../../../src/core/fees/tariff-schema.js";
import { validateTariff } from "../../../../src/core/fees/validate-tariff.js";
import { billOf, fixtureRaw, fixturesDir } from "./fee-helpers.js";

/**
 * docs/tariffs.md promises, for each example tariff, its JSON and a table of bills. This reads
 * the page itself: each `<!-- fixture: x.json -->` block must equal test/fixtures/tariffs/x.json,
 * validate, and bill exactly what the rows after it say.
 */

interface Example {
  fixture: string;
  json: unknown;
  rows: Array<{ enter: string; leave: string; vehicle: VehicleType; yuan: string; line: string }>;
}

function examplesFromDoc(): Example[] {
  const text = readFileSync(new URL("../../../../docs/tariffs.md", import.meta.url), "utf8");
  const examples: Example[] = [];
  const lines = text.split("\n");
  let current: Example | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const marker = /^<!-- fixture: ([\w.-]+) -->$/.exec(line);
    if (marker) {
      assert.equal(lines[i + 1], "```json", `the fixture marker for ${marker[1]} must be followed by a json block`);
      const end = lines.indexOf("```", i + 2);
      current = { fixture: marker[1]!, json: JSON.parse(lines.slice(i + 2, end).join("\n")), rows: [] };
      examples.push(current);
      i = end;
      continue;
    }
    const row = /^\| (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) → (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) \| (small|large|nev) \| (\d+\.\d{2}) \|/.exec(line);
    if (row && current) current.rows.push({ enter: row[1]!, leave: row[2]!, vehicle: row[3] as VehicleType, yuan: row[4]!, line });
  }
  return examples;
}

const examples = examplesFromDoc();

test("the page has the six example tariffs, each with a table of bills", () => {
  assert.deepEqual(
    examples.map((e) => e.fixture),
    ["vendor.json", "day-night-cap.json", "beijing.json", "per-entry.json", "new-energy.json", "first-period.json"],
  );
  for (const example of examples) assert.ok(example.rows.length >= 5, `${example.fixture} has only ${example.rows.length} rows`);
  // Every fixture file is documented.
  const files = readdirSync(fixturesDir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  assert.deepEqual(files, examples.map((e) => e.fixture).sort());
});

for (const example of examples) {
  test(`docs/tariffs.md: ${example.fixture} is the fixture, validates, and bills as the table says`, () => {
    assert.deepEqual(example.json, fixtureRaw(example.fixture), "the JSON on the page differs from the fixture file");
    const result = validateTariff(example.json);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    for (const row of example.rows) {
      const b = billOf(result.tariff, row.enter, row.leave, { vehicleType: row.vehicle });
      assert.equal(formatFen(b.payableFee), row.yuan, `row: ${row.line}`);
      assert.equal(
        b.payableFee,
        b.breakdown.reduce((sum, p) => sum + p.feeFen, 0),
      );
    }
  });
}
