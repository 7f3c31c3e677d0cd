/** Mail stores: maildir trees without Dovecot's caches, and doveadm backup against a real Dovecot. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { cairn, hasProgram, tempDir, treeContents } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

function job(source: string, recipient: string): string {
  return `jobs:
  mail:
    sources:
      mail: { type: mail, ${source} }
    encryption: { age: { recipients: [${recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
`;
}

function maildir(root: string, messages: Record<string, string>): void {
  for (const sub of ["cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"])
    mkdirSync(join(root, sub), { recursive: true });
  for (const [name, body] of Object.entries(messages)) writeFileSync(join(root, name), body);
}

test("mail (maildir): messages, folders and uid lists come back; Dovecot's caches and tmp/ stay out", async () => {
  const ws = workspace(tempDir());
  const alice = join(ws.dir, "vmail/example.com/alice/Maildir");
  maildir(alice, {
    "cur/1700000000.M1P1.mx:2,S": "From: bob@example.com\nSubject: Grüße 🐘\n\nhallo\n",
    "new/1700000001.M2P1.mx": "From: carol@example.com\nSubject: new\n\n\u0000binary\u00ff\n",
    ".Sent/cur/1700000002.M3P1.mx:2,S": "From: alice@example.com\nSubject: sent\n\nx\n",
    "dovecot-uidlist": "3 V1700000000 N4\n1 1700000000.M1P1.mx\n",
    "dovecot-uidvalidity": "6553f100\n",
    subscriptions: "Sent\n",
    "dovecot.index": "cache",
    "dovecot.index.cache": "cache",
    "dovecot.index.log": "cache",
    "dovecot.list.index.log": "cache",
    "tmp/1700000003.M4P1.mx": "half delivered",
  });
  writeFileSync(join(ws.dir, "cairn.yaml"), job("paths: [./vmail]", ws.recipient));
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const out = join(ws.dir, "restored");
  const restored = await cairn(["restore", "mail", "--to-dir", out, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restored.code, 0, restored.stderr);

  const before = treeContents(join(ws.dir, "vmail"));
  const after_ = treeContents(join(out, "vmail"));
  const kept = Object.fromEntries(
    Object.entries(before).filter(([path]) => !/dovecot\.(list\.)?index|\/tmp\//.test(path)),
  );
  assert.deepEqual(after_, kept);
  assert.ok(existsSync(join(out, "vmail/example.com/alice/Maildir/tmp")), "tmp/ itself is kept, empty");
  assert.ok(
    Object.keys(kept).some((p) => p.endsWith("dovecot-uidlist")),
    "IMAP UIDs are kept",
  );
});

const dovecotMissing = ["dovecot", "doveadm"].filter((p) => !hasProgram(p));

test("mail (doveadm): doveadm backup of every user of a real Dovecot, restored to a folder, every message equal", {
  skip: dovecotMissing.length
    ? `needs ${dovecotMissing.join(", ")} (apt-get install dovecot-core; .ci/system-deps does)`
    : false,
}, async () => {
  const ws = workspace(tempDir());
  chmodSync(ws.dir, 0o755);
  const mail = join(ws.dir, "mail");
  const messages = {
    alice: { "cur/1700000000.M1P1.mx:2,S": "From: x@example.com\nSubject: ünï\n\none\n" },
    bob: {
      "cur/1700000001.M1P1.mx:2,S": "From: y@example.com\nSubject: two\n\ntwo\n",
      "new/1700000002.M2P1.mx": "From: z@example.com\nSubject: three\n\nthree\n",
    },
  };
  for (const [user, box] of Object.entries(messages)) maildir(join(mail, user, "Maildir"), box);
  spawnSync("chown", ["-R", "65534:65534", mail]);
  const run = join(ws.dir, "run");
  mkdirSync(run);
  const conf = join(ws.dir, "dovecot.conf");
  writeFileSync(join(ws.dir, "users"), "alice:{PLAIN}x::::::\nbob:{PLAIN}y::::::\n");
  writeFileSync(
    conf,
    `protocols =
ssl = no
base_dir = ${run}
state_dir = ${join(ws.dir, "state-dovecot")}
log_path = ${join(ws.dir, "dovecot.log")}
mail_location = maildir:${mail}/%u/Maildir
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = ${join(ws.dir, "users")}
}
userdb {
  driver = passwd-file
  args = ${join(ws.dir, "users")}
  default_fields = uid=65534 gid=65534 home=${mail}/%u
}
`,
  );
  const dovecot: ChildProcess = spawn("dovecot", ["-F", "-c", conf], { stdio: "ignore" });
  after(() => dovecot.kill("SIGTERM"));
  for (let i = 0; i < 50 && !existsSync(join(run, "auth-userdb")); i++) await sleep(100);

  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    job(`method: doveadm, users: all, config: ${conf}`, ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const out = join(ws.dir, "restored");
  const restored = await cairn(["restore", "mail", "--to-dir", out, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restored.code, 0, restored.stderr);
  for (const [user, box] of Object.entries(messages)) {
    const bodies = Object.entries(treeContents(join(out, user, "Maildir")))
      .filter(([path]) => /^(cur|new)\//.test(path))
      .map(([, body]) => body)
      .sort();
    assert.deepEqual(bodies, Object.values(box).sort(), user);
  }
});
