import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeBox, decodeStay } from "../../../src/lot/lot-payloads.js";
import { lotTopics } from "../../../src/lot/lot-topics.js";
import { decodeListEntry, listTopics } from "../../../src/lot/lot-list-payloads.js";
import { decodeRemoteAnswer, decodeRemoteRequest, requestTopics } from "../../../src/lot/lot-requests.js";
import { compareStayVersions } from "../../../src/lot/lot-view.js";
import { lotShareConfigSchema } from "../../../src/lot/config.js";
import { mqttConfigSchema } from "../../../src/fleet/config.js";

/*
 * docs/mqtt.md §12 ("Sharing one lot between boxes") is the contract between the boxes of a
 * lot: every JSON block there sits under an "Example: `lot/...`" heading and is decoded with
 * the decoder of its topic, the topics are the ones the box builds, and the config table has
 * the schema's defaults.
 */

const doc = readFileSync(new URL("../../../docs/mqtt.md", import.meta.url), "utf8");
const lines = doc.split("\n");
const start = lines.findIndex((l) => l.startsWith("## 12. Sharing one lot between boxes"));
const section = lines.slice(start);
const topicRoot = mqttConfigSchema.shape.topicRoot.parse(undefined);

interface Block {
  heading: string;
  text: string;
}

function blocks(): Block[] {
  const out: Block[] = [];
  let heading = "";
  for (let i = 0; i < section.length; i++) {
    const line = section[i]!;
    const h = /^#{1,6} (.*)$/.exec(line);
    if (h) heading = h[1]!;
    if (line === "```json") {
      const end = section.indexOf("```", i + 1);
      out.push({ heading, text: section.slice(i + 1, end).join("\n") });
      i = end;
    }
  }
  return out;
}

test("docs/mqtt.md has the lot section, with examples of both topics", () => {
  assert.ok(start > 0, "no section 12");
  const found = blocks();
  assert.ok(found.length >= 4);
  for (const block of found) assert.match(block.heading, /^Example: `lot\//, `a json block under "${block.heading}"`);
});

test("every example decodes with its topic's decoder, on the topic the box builds", () => {
  const topics = lotTopics(topicRoot, "TEST/1P1");
  const stays = [];
  for (const block of blocks()) {
    const topic = `${topicRoot}/${/^Example: `([^`]+)`/.exec(block.heading)![1]!}`;
    // Forwarded remote control (§12.10): a request to a box, or an answer to the box that asked.
    const exchange = /\/(requests|responses)\/([^/]+)$/.exec(topic);
    if (exchange) {
      const deviceId = decodeURIComponent(exchange[2]!);
      const isRequest = exchange[1] === "requests";
      assert.equal(topic, isRequest ? requestTopics(topics.base).request(deviceId) : requestTopics(topics.base).response(deviceId));
      const decoded = isRequest ? decodeRemoteRequest(Buffer.from(block.text), deviceId) : decodeRemoteAnswer(Buffer.from(block.text));
      assert.ok(decoded.ok, `${block.heading}: ${decoded.ok ? "" : decoded.message}`);
      continue;
    }
    const lists = listTopics(topics.base);
    if (lists.owns(topic)) {
      // Lists shared by the lot (§12.9): a list entry's version, on the topic the box builds for it.
      const where = lists.parse(topic);
      assert.ok(where.ok, `${topic} is not a list entry's topic`);
      assert.equal(lists.entry(where.kind, where.key), topic);
      const version = decodeListEntry(Buffer.from(block.text), where.kind, where.key);
      assert.ok(version.ok, `${block.heading}: ${version.ok ? "" : version.message}`);
      continue;
    }
    const what = topics.parse(topic);
    assert.ok(what, `${topic} is not a lot topic`);
    const payload = Buffer.from(block.text);
    if (what.kind === "box") {
      assert.equal(topics.box(what.deviceId), topic);
      const box = decodeBox(payload, what.deviceId);
      assert.ok(box.ok, `${block.heading}: ${box.ok ? "" : box.message}`);
    } else {
      assert.equal(topics.stay(what.recordNo), topic);
      const stay = decodeStay(payload, what.recordNo);
      assert.ok(stay.ok, `${block.heading}: ${stay.ok ? "" : stay.message}`);
      stays.push(stay.value);
    }
  }
  // The two versions of the example stay: the left one wins, as §12.5 says.
  const [inPark, left] = stays;
  assert.equal(inPark?.state, "in-park");
  assert.equal(left?.state, "left");
  assert.ok(compareStayVersions(left, inPark) > 0);
});

test("the lot.share table lists every key with its default", () => {
  const defaults = lotShareConfigSchema.parse({});
  const rows = section.filter((l) => /^\| `[a-zA-Z]+` \| /.test(l)).map((l) => l.split("|").map((c) => c.trim()));
  const table = new Map(rows.map((cells) => [cells[1]!.replace(/`/g, ""), cells[2]!]));
  for (const key of Object.keys(lotShareConfigSchema.shape)) {
    assert.ok(table.has(key), `lot.share.${key} is not in the table`);
    const value = (defaults as Record<string, unknown>)[key];
    if (value !== undefined) assert.equal(table.get(key), `\`${JSON.stringify(value)}\``, `lot.share.${key} default`);
  }
});
