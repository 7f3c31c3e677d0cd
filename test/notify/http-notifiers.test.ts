/**
 * Every HTTP notifier against a real HTTP server on 127.0.0.1 that captures each request: a job
 * that fails (its source exits 3 after writing to stderr) and one that succeeds, through the CLI.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startHttpCapture } from "../helpers/http-capture.ts";
import { configured } from "../helpers/jobs.ts";

test("notifiers: each receiver gets what failed, where, why and the tool's last lines; a refusing one never masks the result", async () => {
  const capture = await startHttpCapture((path) => (path.startsWith("/broken") ? 500 : 200));
  const u = capture.url;
  const { cli: run } = configured(`notifications:
  hook: { type: webhook, url: "${u}/webhook", headers: { authorization: "Bearer hook-secret-1" }, on: always }
  sms: { type: webhook, url: "${u}/sms", template: "to=+33600000000&msg={title}: {error}", content_type: application/x-www-form-urlencoded }
  slack: { type: slack, webhook_url: "${u}/slack/T000/B000/xyz" }
  discord: { type: discord, webhook_url: "${u}/discord/123/abc" }
  teams: { type: teams, webhook_url: "${u}/teams/hook" }
  telegram: { type: telegram, bot_token: "123:tg-secret", chat_id: 42, api_url: "${u}/telegram" }
  ntfy: { type: ntfy, url: "${u}/ntfy/backups", token: tk_ntfy_secret }
  gotify: { type: gotify, url: "${u}/gotify", token: gotify-secret }
  hc: { type: healthchecks, url: "${u}/hc/uuid-1" }
  sentry: { type: sentry, dsn: "http://publickey@127.0.0.1:${new URL(u).port}/sentry/7" }
  broken: { type: slack, webhook_url: "${u}/broken" }
  quiet: { type: slack, webhook_url: "${u}/quiet", enabled: false, on: always }
  starts: { type: webhook, url: "${u}/starts", on: [start, failure] }
jobs:
  db:
    sources:
      dump: { type: command, command: [sh, -c, "echo 'FATAL: role backup does not exist' >&2; exit 3"] }
    destinations:
      here: { type: local, path: ./backups }
  www:
    sources: { site: { type: files, paths: [./site] } }
    destinations:
      here: { type: local, path: ./backups }
`);
  const cli = (args: string[]) => run(args, { SENTRY_DSN: "" });
  const failed = await cli(["backup", "db"]);
  assert.equal(failed.code, 1, "the job's failure is the exit code, the broken notifier changes nothing");
  assert.match(failed.stdout, /notifier broken failed \(the result stands\): notifier broken: HTTP 500/);

  const [hook] = capture.on("/webhook");
  assert.equal(hook?.headers.authorization, "Bearer hook-secret-1");
  const event = JSON.parse(hook!.body);
  assert.equal(event.kind, "failure");
  assert.equal(event.job, "db");
  assert.match(event.session, /^[0-9a-f-]{36}$/, "the run's session id, as in its log lines");
  assert.match(failed.stderr, new RegExp(`session=${event.session}`));
  assert.match(event.error.message, /exit(ed)? (with )?(code )?3|status 3/);
  assert.match(event.error.stderr, /FATAL: role backup does not exist/);
  const slack = JSON.parse(capture.on("/slack/T000/B000/xyz")[0]!.body);
  assert.match(slack.text, /^cairn: backup of db on .* FAILED/);
  assert.match(slack.text, /FATAL: role backup does not exist/);
  assert.match(slack.text, /ran \d/);
  assert.match(JSON.parse(capture.on("/discord/123/abc")[0]!.body).content, /FAILED/);
  assert.equal(JSON.parse(capture.on("/teams/hook")[0]!.body)["@type"], "MessageCard");
  const telegram = capture.on("/telegram/bot123:tg-secret/sendMessage")[0]!;
  assert.equal(JSON.parse(telegram.body).chat_id, 42);
  const ntfy = capture.on("/ntfy/backups")[0]!;
  assert.equal(ntfy.headers.authorization, "Bearer tk_ntfy_secret");
  assert.equal(ntfy.headers.priority, "high");
  assert.match(ntfy.body, /FATAL/);
  const gotify = capture.on("/gotify/message")[0]!;
  assert.equal(gotify.headers["x-gotify-key"], "gotify-secret");
  assert.equal(JSON.parse(gotify.body).priority, 8);
  assert.deepEqual(
    capture.on("/hc/").map((r) => r.path),
    ["/hc/uuid-1/start", "/hc/uuid-1/fail"],
    "healthchecks hears start and fail",
  );
  const sentry = capture.on("/sentry/api/7/store/")[0]!;
  assert.match(String(sentry.headers["x-sentry-auth"]), /sentry_key=publickey/);
  const sentryEvent = JSON.parse(sentry.body);
  assert.equal(sentryEvent.level, "error");
  assert.equal(sentryEvent.tags.job, "db");
  const sms = capture.on("/sms")[0]!;
  assert.equal(sms.headers["content-type"], "application/x-www-form-urlencoded");
  assert.match(sms.body, /^to=\+33600000000&msg=cairn: backup of db on .* FAILED: /);
  assert.equal(capture.on("/quiet").length, 0, "enabled: false stays quiet");
  const [started, ended] = capture.on("/starts").map((r) => JSON.parse(r.body));
  assert.equal(started?.kind, "start", "on: [start, failure] hears the start");
  assert.equal(ended?.kind, "failure");
  assert.match(started.snapshot, /^\d{4}-\d\d-\d\dT/, "the start names the snapshot the run will write");
  assert.equal(started.snapshot, ended.snapshot);
  assert.equal(started.session, ended.session);
  // Nothing secret leaks into what cairn printed.
  for (const secret of ["hook-secret-1", "tg-secret", "tk_ntfy_secret", "gotify-secret"])
    assert.ok(!`${failed.stdout}${failed.stderr}`.includes(secret), secret);

  const before = capture.requests.length;
  const ok = await cli(["backup", "www", "--notify", "quiet"]);
  assert.equal(ok.code, 0, ok.stderr);
  const after = capture.requests.slice(before).map((r) => r.path);
  assert.ok(after.includes("/webhook"), "on: always hears success");
  assert.ok(after.includes("/quiet"), "--notify turns a disabled notifier on for one run");
  assert.ok(!after.some((p) => p.startsWith("/slack")), "on: failure (the default) stays quiet on success");
  assert.equal(
    after.filter((p) => p === "/starts").length,
    1,
    "on: [start, failure] hears a success's start only",
  );
  assert.deepEqual(
    after.filter((p) => p.startsWith("/hc/")),
    ["/hc/uuid-1/start", "/hc/uuid-1"],
  );
  assert.equal(
    JSON.parse(capture.requests.slice(before).find((r) => r.path === "/webhook")!.body).kind,
    "success",
  );
});

test("--sentry-dsn and $SENTRY_DSN report a failure to Sentry with no sentry notifier in the config", async () => {
  const capture = await startHttpCapture(() => 200);
  const port = new URL(capture.url).port;
  const { cli } = configured(`jobs:
  db:
    sources:
      dump: { type: command, command: [sh, -c, "exit 3"] }
    destinations:
      here: { type: local, path: ./backups }
`);
  const flagged = await cli(["backup", "db", "--sentry-dsn", `http://flagkey@127.0.0.1:${port}/sentry/9`], {
    SENTRY_DSN: "",
  });
  assert.equal(flagged.code, 1);
  const fromEnv = await cli(["backup", "db"], { SENTRY_DSN: `http://envkey@127.0.0.1:${port}/sentry/9` });
  assert.equal(fromEnv.code, 1);
  const keys = capture
    .on("/sentry/api/9/store/")
    .map((r) => String(r.headers["x-sentry-auth"]).match(/sentry_key=(\w+)/)?.[1]);
  assert.deepEqual(keys, ["flagkey", "envkey"]);
});
