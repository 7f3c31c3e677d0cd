/**
 * What a newcomer meets first: `cairn init`, shell completion, man pages, keygen to stdout, and
 * the warning about unencrypted backups — each asserted as the user sees it.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, cairn, ROOT, run, tempDir } from "../helpers/env.ts";

const hasShell = (shell: string) => existsSync(`/usr/bin/${shell}`);

test("init writes a commented config that passes config check, with a new key, and never overwrites", async () => {
  const dir = tempDir();
  const made = await cairn(["init", "--source", "postgres", "--destination", "s3", "--key", "key.txt"], {
    cwd: dir,
  });
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stderr, /wrote cairn\.yaml: job main, postgres → s3, encrypted/);
  const text = readFileSync(join(dir, "cairn.yaml"), "utf8");
  const identity = readFileSync(join(dir, "key.txt"), "utf8");
  assert.equal(statSync(join(dir, "key.txt")).mode & 0o777, 0o600);
  const recipient = identity.match(/# public key: (age1\w+)/)![1]!;
  assert.ok(text.includes(`recipients: [${recipient}]`), "encrypted to the new key's recipient");
  assert.match(text, /^ {8}# port: 5432 {2}# integer$/m, "optional options are commented, with defaults");
  assert.match(text, /^ {8}bucket: my-backups {2}# bucket name/m, "required options have an example");
  assert.match(text, /# secret_access_key: "\$\{S3_SECRET_ACCESS_KEY\}" .*a secret/);
  const checked = await cairn(["config", "check"], { cwd: dir });
  assert.equal(checked.code, 0, checked.stderr);
  assert.equal(checked.stderr, "", "no warning about an encrypted job");

  const again = await cairn(["init", "--source", "files", "--destination", "local", "--key", "key.txt"], {
    cwd: dir,
  });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /cairn\.yaml already exists\n {2}→ init never overwrites/);
  assert.equal(readFileSync(join(dir, "cairn.yaml"), "utf8"), text);
  assert.equal(
    readFileSync(join(dir, "key.txt"), "utf8"),
    identity,
    "an existing key file is read, not replaced",
  );
});

test("init: every source and destination gives a config that passes config check", async () => {
  const dir = tempDir();
  const pairs = [
    ...["command", "files", "ldap", "mail", "mongodb", "mysql", "postgres", "redis", "sqlite"].map((s) => [
      s,
      "local",
    ]),
    ...["s3", "sftp", "ftp", "webdav", "rclone", "azure", "swift", "http", "rsync", "git"].map((d) => [
      "files",
      d,
    ]),
  ];
  for (const [source, destination] of pairs) {
    const file = `${source}-${destination}.yaml`;
    const made = await cairn(
      [
        "config",
        "generate",
        "--source",
        source!,
        "--destination",
        destination!,
        "--no-encryption",
        "-o",
        file,
      ],
      { cwd: dir },
    );
    assert.equal(made.code, 0, made.stderr);
    const checked = await cairn(["-c", file, "config", "check"], { cwd: dir });
    assert.equal(checked.code, 0, `${source} → ${destination}: ${checked.stderr}`);
  }
});

test("init asks on a terminal, and without one says which flags it needs", async () => {
  const dir = tempDir();
  const typed = await run("script", ["-qec", `'${process.execPath}' '${CLI}' init`, "/dev/null"], {
    cwd: dir,
    input: "sqlight\nsqlite\n\nmy.key\n",
  });
  assert.equal(typed.code, 0, typed.stdout);
  assert.match(typed.stdout, /source to back up \(command, files, .*\) \[files\]:/);
  assert.match(typed.stdout, /not one of them: sqlight/);
  const text = readFileSync(join(dir, "cairn.yaml"), "utf8");
  assert.match(text, /type: sqlite\n/);
  assert.match(text, /type: local\n/);
  assert.ok(existsSync(join(dir, "my.key")));

  const bare = tempDir();
  const refused = await cairn(["init", "--source", "files"], { cwd: bare });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /no key to encrypt to\n {2}→ give --key FILE .* or --no-encryption/);
  assert.ok(!existsSync(join(bare, "cairn.yaml")), "nothing written");
});

test("a job without encryption warns loudly; encryption: none says it is meant", async () => {
  const dir = tempDir();
  const config = (encryption: string) =>
    `jobs:\n  app:\n    sources: { f: { type: files, paths: [.] } }\n${encryption}    destinations: { d: { type: local, path: ./b } }\n`;
  writeFileSync(join(dir, "cairn.yaml"), config(""));
  const warned = await cairn(["config", "check"], { cwd: dir });
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /job app stores its backups UNENCRYPTED: .* or write encryption: none/);
  writeFileSync(join(dir, "cairn.yaml"), config("    encryption: none\n"));
  const quiet = await cairn(["config", "check"], { cwd: dir });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
});

test("keygen -o - writes the identity to stdout and the recipient to stderr", async () => {
  const r = await cairn(["keygen", "-o", "-"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^# created: .*\n# public key: age1\w{58}\nAGE-SECRET-KEY-1\w+\n$/);
  assert.match(r.stderr, /^its recipient: age1\w{58}\n$/);
  const dir = tempDir();
  const json = await cairn(["keygen", "-o", "k.txt", "--json"], { cwd: dir });
  assert.equal(json.code, 0, json.stderr);
  const made = JSON.parse(json.stdout);
  assert.deepEqual(Object.keys(made), ["file", "kind", "public_key"]);
  assert.equal(made.kind, "age");
  assert.ok(readFileSync(join(dir, "k.txt"), "utf8").includes(`# public key: ${made.public_key}`));
});

test("bash completion completes commands, options, choices and files after a value option", async (t) => {
  if (!hasShell("bash")) return t.skip("bash is not installed");
  const script = (await cairn(["completion", "bash"])).stdout;
  const dir = tempDir();
  writeFileSync(join(dir, "c.bash"), script);
  const complete = async (...words: string[]) => {
    const r = await run(
      "bash",
      [
        "-c",
        `source c.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _cairn; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { cwd: dir },
    );
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n");
  };
  assert.deepEqual(await complete("cairn", "ba"), ["backup"]);
  assert.deepEqual(
    await complete("cairn", "-c", "x.yaml", "sch"),
    ["schedule"],
    "a value option's value is skipped",
  );
  assert.deepEqual(await complete("cairn", "schedule", "in"), ["install"]);
  assert.deepEqual(await complete("cairn", "backup", "--dry"), ["--dry-run"]);
  assert.deepEqual(await complete("cairn", "--log-format", ""), ["human", "json"]);
  assert.deepEqual(await complete("cairn", "completion", "z"), ["zsh"]);
  assert.deepEqual(await complete("cairn", "-c", "c.ba"), ["c.bash"], "files after -c");
});

test("fish completion, run by fish itself", async (t) => {
  if (!hasShell("fish")) return t.skip("fish is not installed (.ci/system-deps installs it)");
  const dir = tempDir();
  writeFileSync(join(dir, "cairn.fish"), (await cairn(["completion", "fish"])).stdout);
  const complete = async (line: string) =>
    (await run("fish", ["-c", `source cairn.fish; complete -C '${line}'`], { cwd: dir })).stdout
      .trim()
      .split("\n")
      .map((l) => l.split("\t")[0]);
  assert.deepEqual(await complete("cairn ba"), ["backup"]);
  assert.deepEqual((await complete("cairn schedule ")).sort(), ["install", "show"]);
  assert.deepEqual(await complete("cairn backup --dry"), ["--dry-run"]);
  assert.deepEqual(await complete("cairn --log-format "), ["human", "json"]);
});

test("zsh completion: the real zsh reads the tables, compsys's builtins stand in", async (t) => {
  if (!hasShell("zsh")) return t.skip("zsh is not installed (.ci/system-deps installs it)");
  // compsys needs a terminal to run; _describe, compadd and _files are replaced by printers.
  const dir = tempDir();
  writeFileSync(join(dir, "_cairn"), (await cairn(["completion", "zsh"])).stdout);
  const complete = async (...words: string[]) => {
    const r = await run(
      "zsh",
      [
        "-c",
        `compdef() { :; }; _describe() { local -a e; e=("\${(@P)2}"); print -l -- "\${e[@]%%:*}"; }
compadd() { shift; print -l -- "$@"; }; _files() { print FILES; }
source ./_cairn
words=(${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${words.length}; PREFIX='${words.at(-1)}'
_cairn | grep -- "^$PREFIX"`,
      ],
      { cwd: dir },
    );
    return r.stdout.trim().split("\n");
  };
  assert.deepEqual(await complete("cairn", "ba"), ["backup"]);
  assert.deepEqual(await complete("cairn", "-c", "x.yaml", "sch"), ["schedule"]);
  assert.deepEqual(await complete("cairn", "backup", "--dry"), ["--dry-run"]);
  assert.deepEqual(await complete("cairn", "--log-format", ""), ["human", "json"]);
  assert.deepEqual(await complete("cairn", "-c", ""), ["FILES"]);
});

test("man pages: one per command, rendered by man, with options and examples", async (t) => {
  const man = join(ROOT, "dist/man");
  if (!existsSync(join(man, "cairn.1")))
    return t.skip("dist/man is written by npm run build (npm test builds)");
  for (const page of [
    "cairn",
    "cairn-backup",
    "cairn-restore",
    "cairn-schedule-install",
    "cairn-init",
    "cairn-completion",
  ])
    assert.ok(existsSync(join(man, `${page}.1`)), page);
  if (!existsSync("/usr/bin/man")) return t.skip("man is not installed");
  const shown = await run("man", ["-l", join(man, "cairn-backup.1")], {
    env: { MANWIDTH: "100", MAN_KEEP_FORMATTING: "" },
  });
  assert.equal(shown.code, 0, shown.stderr);
  const text = shown.stdout.replace(/.\x08/g, "");
  assert.match(text, /NAME\n\s+cairn-backup\s+-\s+back\s+up\s+the\s+named\s+jobs/);
  assert.match(text, /--dry-run\n\s+run the sources and transforms to the end/);
  assert.match(text, /EXAMPLES\n\s+cairn backup/);
  assert.match(text, /EXIT STATUS\n\s+0\s+success/);
});
