/** Log lines beyond stderr: --log-file, and syslog through util-linux's logger to a real UDP receiver. */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { configured } from "../helpers/jobs.ts";

const SECRET = "s3cr3t-value-for-the-log-test";

const JOB = `jobs:
  app:
    sources:
      site: { type: files, paths: [./site] }
      secretive: { type: command, command: [sh, -c, 'echo "token is $TOKEN" >&2; echo data'], secret_env: { TOKEN: ${SECRET} } }
    compression: none
    destinations: { near: { type: local, path: ./near } }
`;

test("--log-file: timestamped lines at info even with -q, the error that ends a command too, no secret", async () => {
  const { ws, cli } = configured(JOB);
  const file = join(ws.dir, "logs/cairn.log");
  const run = await cli(["--log-file", file, "-q", "-v", "backup"]);
  assert.equal(run.code, 0, run.stderr);
  const failed = await cli(["--log-file", file, "restore", "nosuchjob", "--to-dir", join(ws.dir, "x")]);
  assert.equal(failed.code, 2);
  const lines = readFileSync(file, "utf8").trim().split("\n");
  for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /, line);
  assert.ok(
    lines.some((l) => / backup finished +job=app/.test(l)),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((l) => /token is <redacted>/.test(l)),
    "the tool's stderr, at debug with -v, redacted",
  );
  assert.ok(
    lines.some((l) => /cairn: no job named "nosuchjob"/.test(l)),
    lines.join("\n"),
  );
  assert.ok(!readFileSync(file, "utf8").includes(SECRET));
});

test("syslog: each line a message with its own priority and the configured facility and tag (RFC 5424 over UDP)", async () => {
  const receiver = createSocket("udp4");
  const messages: string[] = [];
  receiver.on("message", (m) => messages.push(m.toString()));
  await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
  const port = receiver.address().port;
  try {
    const { ws, cli } = configured(
      `log: { syslog: { server: "udp://127.0.0.1:${port}", facility: local3, tag: cairn-test } }\n${JOB}  broken:\n    sources: { site: { type: files, paths: [./site] } }\n    destinations: { nowhere: { type: local, path: ./a-file/x } }\n`,
    );
    writeFileSync(join(ws.dir, "a-file"), "not a folder\n");
    assert.equal((await cli(["-q", "backup", "app"])).code, 0);
    assert.equal((await cli(["backup", "broken"])).code, 1);
    for (let i = 0; i < 50 && !messages.some((m) => m.includes("backup failed")); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    // local3 = 19: info = 19*8+6 = 158, error = 19*8+3 = 155.
    const info = messages.find((m) => m.includes("backup finished"));
    assert.match(info ?? "", /^<158>1 \S+ \S+ cairn-test \d+ /, messages.join("\n"));
    const error = messages.find((m) => m.includes("backup failed"));
    assert.match(error ?? "", /^<155>1 .*job=broken/, messages.join("\n"));
    assert.ok(!messages.join("\n").includes(SECRET));
  } finally {
    receiver.close();
  }
});
