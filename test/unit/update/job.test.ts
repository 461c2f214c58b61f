import { test } from "node:test";
import assert from "node:assert/strict";
import { toFleetJobStatus, updateJobSchema } from "../../../src/update/job.js";

const base = { v: 1, version: "1.2.3", url: "https://updates.example/b.tar", sha256: "AB".repeat(32), size: 10, expiresAt: 1_700_000_000_000 };

test("the job schema normalises hashes and ISO expiry, and refuses unknown keys", () => {
  const parsed = updateJobSchema.parse({ ...base, type: "update", expiresAt: "2025-01-01T00:00:00+08:00" });
  assert.equal(parsed.sha256, "ab".repeat(32));
  assert.equal(parsed.expiresAt, Date.UTC(2024, 11, 31, 16));
  assert.equal(parsed.allowDowngrade, false);
  const typo = updateJobSchema.safeParse({ ...base, allowDowngrad: true });
  assert.equal(typo.success, false);
  assert.equal(updateJobSchema.safeParse({ ...base, url: "file:///etc/passwd" }).success, false);
  assert.equal(updateJobSchema.safeParse({ ...base, version: "../../etc" }).success, false);
  assert.equal(updateJobSchema.safeParse({ ...base, type: "reboot" }).success, false);
});

test("statuses map onto the fleet link's jobs/<id>/status shape", () => {
  const running = toFleetJobStatus({ v: 1, jobId: "j", status: "in-progress", step: "download", progress: 0.5, version: "1.2.3", fromVersion: "1.2.0", ts: 1 });
  assert.deepEqual(running, { status: "running", step: "download", progress: 0.5, detail: "(1.2.0 → 1.2.3)" });
  const failed = toFleetJobStatus({
    v: 1,
    jobId: "j",
    status: "rolled-back",
    step: "rollback",
    progress: 1,
    fromVersion: "1.2.0",
    version: "1.2.3",
    code: "E_UNHEALTHY",
    reason: "lanes not up",
    ts: 1,
  });
  assert.equal(failed.status, "rolled-back");
  assert.equal(failed.detail, "E_UNHEALTHY lanes not up (1.2.0 → 1.2.3)");
});
