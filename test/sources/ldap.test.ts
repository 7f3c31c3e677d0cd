/** The ldap source against real slapd servers: every entry and attribute comes back. */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, hasProgram, tempDir } from "../helpers/env.ts";
import { sourceJob, workspace } from "../helpers/jobs.ts";
import { ADMIN, ADMIN_PASSWORD, awkwardDirectory, SUFFIX, startSlapd } from "../helpers/slapd.ts";

const missing = ["slapd", "slapcat", "slapadd", "ldapsearch", "ldapadd"].filter((p) => !hasProgram(p));
const skip = missing.length
  ? `needs ${missing.join(", ")} (apt-get install slapd ldap-utils; .ci/system-deps does)`
  : false;

function job(source: string, recipient: string): string {
  return sourceJob("directory", "ldap", `type: ldap\nbase: "${SUFFIX}"\n${source}`, recipient);
}

const bind = (uri: string, password = ADMIN_PASSWORD) =>
  `uri: ${uri}\nbind_dn: "${ADMIN}"\npassword: ${password}`;

test("ldap (ldapsearch): back up, restore into a fresh server, every entry equal; verify; refuses a non-empty target", {
  skip,
}, async () => {
  const ws = workspace(tempDir());
  const source = await startSlapd(join(ws.dir, "a"));
  source.add(awkwardDirectory());
  writeFileSync(join(ws.dir, "cairn.yaml"), job(bind(source.uri), ws.recipient));
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const shown = JSON.parse(
    (await cairn(["show", "directory", "--json"], { cwd: ws.dir, env: ws.env })).stdout,
  );
  assert.equal(
    shown.manifest.artifacts[0].meta.entries,
    source.entries().length,
    "paged past the size limit",
  );

  const fresh = await startSlapd(join(ws.dir, "b"));
  writeFileSync(join(ws.dir, "cairn.yaml"), job(bind(fresh.uri), ws.recipient));
  const restored = await cairn(["restore", "directory", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(fresh.entries(), source.entries());

  const verify = await cairn(["verify", "directory", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /LDIF with 605 entries/);

  const again = await cairn(["restore", "directory", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /dc=example,dc=com already exists on ldap:\/\/127\.0\.0\.1:\d+/);
  assert.deepEqual(fresh.entries(), source.entries(), "the existing directory is untouched");
});

test("ldap: a damaged backup fails the restore and leaves the target server empty again", {
  skip,
}, async () => {
  const ws = workspace(tempDir());
  const source = await startSlapd(join(ws.dir, "a"));
  source.add(awkwardDirectory());
  writeFileSync(join(ws.dir, "cairn.yaml"), job(bind(source.uri), ws.recipient));
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const shown = JSON.parse(
    (await cairn(["show", "directory", "--json"], { cwd: ws.dir, env: ws.env })).stdout,
  );
  const object = join(ws.dir, "backups", shown.folder, shown.manifest.artifacts[0].objects[0].key);
  const bytes = readFileSync(object);
  bytes[bytes.length - 100]! ^= 0xff;
  writeFileSync(object, bytes);

  const fresh = await startSlapd(join(ws.dir, "b"));
  writeFileSync(join(ws.dir, "cairn.yaml"), job(bind(fresh.uri), ws.recipient));
  const r = await cairn(["restore", "directory", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /checksum|SHA-256|integrity|age/i);
  assert.deepEqual(fresh.entries(), [], "nothing half-restored stays");
});

test("ldap: a wrong password fails the backup clearly; nothing recorded, the password never shown", {
  skip,
}, async () => {
  const ws = workspace(tempDir());
  const source = await startSlapd(join(ws.dir, "a"));
  source.add(awkwardDirectory(3));
  writeFileSync(join(ws.dir, "cairn.yaml"), job(bind(source.uri, "not-the-password-9"), ws.recipient));
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Invalid credentials/);
  assert.ok(!r.stderr.includes("not-the-password-9"));
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0);
});

test("ldap (slapcat): dump the database files, slapadd them into a stopped fresh server, every entry equal", {
  skip,
}, async () => {
  const ws = workspace(tempDir());
  const source = await startSlapd(join(ws.dir, "a"));
  source.add(awkwardDirectory(50));
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    job(`mode: slapcat\nconfig_dir: ${source.configDir}`, ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);

  const fresh = await startSlapd(join(ws.dir, "b"));
  await fresh.stop();
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    job(`mode: slapcat\nconfig_dir: ${fresh.configDir}`, ws.recipient),
  );
  const restored = await cairn(["restore", "directory", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(restored.code, 0, restored.stderr);
  await fresh.start();
  assert.deepEqual(fresh.entries(), source.entries());

  // Into a database that holds entries: refused.
  await fresh.stop();
  const again = await cairn(["restore", "directory", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /is not empty/);

  const out = join(ws.dir, "ldif-out");
  const toDir = await cairn(["restore", "directory", "--to-dir", out, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(toDir.code, 0, toDir.stderr);
  assert.deepEqual(readdirSync(out), ["ldap.ldif"]);
  assert.match(readFileSync(join(out, "ldap.ldif"), "utf8"), /^dn: dc=example,dc=com$/m);
});

test("ldap: a missing base and an ldapsearch killed mid-stream fail clearly; nothing is recorded", {
  skip,
}, async () => {
  const ws = workspace(tempDir());
  const source = await startSlapd(join(ws.dir, "a"));
  source.add(awkwardDirectory(300));
  const bin = join(ws.dir, "bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "ldapsearch"),
    `#!/bin/sh\ncase "$*" in *objectClass=*) "$(PATH=/usr/bin:/bin command -v ldapsearch)" "$@" | head -c 20000; kill -9 $$;; esac\nexec /usr/bin/ldapsearch "$@"\n`,
  );
  chmodSync(join(bin, "ldapsearch"), 0o755);
  const cases: [string, string, RegExp][] = [
    [
      "missing base",
      job(bind(source.uri), ws.recipient).replace(`base: "${SUFFIX}"`, 'base: "dc=nowhere,dc=org"'),
      /No such object/,
    ],
    ["killed", job(`${bind(source.uri)}\nbin_dir: ${bin}`, ws.recipient), /ldapsearch was killed by SIGKILL/],
  ];
  for (const [name, config, expected] of cases) {
    writeFileSync(join(ws.dir, "cairn.yaml"), config);
    const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, expected, name);
    const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
    assert.equal(listed.snapshots.length, 0, name);
  }
});

test("ldap: doctor checks the base entry on the real server, and names a wrong one", { skip }, async () => {
  const ws = workspace(tempDir());
  const source = await startSlapd(join(ws.dir, "a"));
  source.add(awkwardDirectory(2));
  writeFileSync(join(ws.dir, "cairn.yaml"), job(bind(source.uri), ws.recipient));
  const good = JSON.parse((await cairn(["doctor", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  const check = good.checks.find((c: { section: string }) => c.section === "source");
  assert.equal(check.status, "ok", check.detail);
  assert.equal(check.detail, `${source.uri}: ${SUFFIX} readable`);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    job(bind(source.uri), ws.recipient).replace(SUFFIX, `ou=nowhere,${SUFFIX}`),
  );
  const r = await cairn(["doctor", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  const bad = JSON.parse(r.stdout).checks.find((c: { section: string }) => c.section === "source");
  assert.equal(bad.status, "fail");
  assert.match(bad.detail, /the base entry ou=nowhere,.* does not exist on ldap:/);
});
