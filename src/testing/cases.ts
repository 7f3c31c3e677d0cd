/**
 * Test cases that any test runner can run: each is a title and an async function that throws on
 * failure (node:assert). `registerCases` hands them to the runner's `test` (node:test, vitest,
 * jest, mocha's `it`).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { PluginContext } from "../kit/contracts.ts";
import { silentLogger } from "../kit/logger.ts";

/** What a case returns when it cannot apply to its subject: why (reported, never a silent pass). */
export interface Skipped {
  skipped: string;
}

export interface TestCase {
  title: string;
  run(): Promise<undefined | Skipped>;
}

/** A runner's `test(title, fn)`; node:test passes a context with `skip(reason)`. */
export type TestFunction = (title: string, fn: (t?: unknown) => Promise<void>) => unknown;

/** Registers every case with the runner, titled `<prefix>: <title>`. */
export function registerCases(test: TestFunction, cases: readonly TestCase[], prefix?: string): void {
  for (const testCase of cases)
    test(prefix ? `${prefix}: ${testCase.title}` : testCase.title, async (t?: unknown) => {
      const result = await testCase.run();
      if (!result) return;
      const skip = (t as { skip?: (reason: string) => void } | undefined)?.skip;
      if (typeof skip === "function") skip.call(t, result.skipped);
      else console.log(`skipped: ${testCase.title}: ${result.skipped}`);
    });
}

/** A plugin context for one call: a fresh private work folder, no logging, never cancelled. */
export function testContext(signal = new AbortController().signal): PluginContext {
  return { signal, logger: silentLogger, workDir: mkdtempSync(join(tmpdir(), "cairn-test-")) };
}

/** Every byte of a stream (small streams in tests only). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
