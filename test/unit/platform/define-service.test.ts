import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { defineService, ok } from "../../../src/platform/services/common.js";
import { queryCarPage } from "../../../src/platform/services/vehicles.js";

test("a service's schema is built at its first use, once, not when its module loads", () => {
  let builds = 0;
  const service = defineService({
    id: "queryCarPage",
    section: "4.x",
    mutates: false,
    schema: () => {
      builds++;
      return z.looseObject({ parkCode: z.string() });
    },
    handle: () => Promise.resolve(ok()),
  });
  assert.equal(builds, 0, "defining a service builds nothing");
  const first = service.schema;
  assert.equal(builds, 1);
  assert.equal(service.schema, first, "the same schema every time");
  assert.equal(builds, 1);
  assert.equal(first.safeParse({ parkCode: "P1" }).success, true);
  assert.equal(first.safeParse({ parkCode: 7 }).success, false);
});

test("a real service reads its request through the lazily built schema", () => {
  const read = queryCarPage.schema.safeParse({ parkCode: "P1", page: "2", pageSize: 10 });
  assert.equal(read.success, true);
  assert.equal(read.data?.page, 2, "the wire's numeric text is read as a number");
  assert.equal(queryCarPage.schema.safeParse({ page: 1, pageSize: 10 }).success, false, "parkCode is required");
});
