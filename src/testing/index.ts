/**
 * `@cairn-backup/cairn/testing`: the suites the built-ins pass, for plugin authors — the storage
 * conformance cases and the source round trip — as plain cases any test runner can run.
 *
 *   import { test } from "node:test";
 *   import { registerCases, storageConformance } from "@cairn-backup/cairn/testing";
 *   registerCases(test, storageConformance(async () => ({ storage: openMine() })), "mine");
 */
export {
  readAll,
  registerCases,
  type Skipped,
  type TestCase,
  type TestFunction,
  testContext,
} from "./cases.ts";
export { type SourceRoundTripOptions, sourceRoundTrip } from "./source.ts";
export {
  bigStream,
  type StorageConformanceOptions,
  type StorageSubject,
  storageCase,
  storageConformance,
} from "./storage.ts";
