/**
 * `npm run build:deb`: a Debian package around the single executable, made with dpkg-deb from
 * files on this machine (no network): /usr/bin/cairn, the man pages, the shell completions, an
 * example config in /etc/cairn, and systemd unit templates (cairn@JOB.timer, cairn-daemon).
 * Output: build/cairn_<version>_<arch>.deb (`npm run build:deb -- arm64` for arm64, whose Node
 * binary comes from the npm registry).
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { arch } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { sampleConfig } from "../src/config/sample.ts";
import { createRegistry } from "../src/registry.ts";
import { buildExecutable } from "./build-exe.ts";
import { COMPLETION_FILES, writeShellFiles } from "./shell-files.ts";

const ROOT = join(import.meta.dirname, "..");
const OUT = join(ROOT, "build");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  description: string;
};
const debArch = (target: string) => ({ x64: "amd64", arm64: "arm64" })[target as "x64" | "arm64"] ?? target;

const SERVICE = `[Unit]
Description=cairn backup of job %i
Documentation=man:cairn-backup(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/bin/cairn -c /etc/cairn/cairn.yaml backup %i
Nice=10
IOSchedulingClass=idle
`;

const TIMER = `[Unit]
Description=daily cairn backup of job %i (systemctl edit cairn@%i.timer to change OnCalendar)
Documentation=man:cairn-schedule(1)

[Timer]
OnCalendar=daily
RandomizedDelaySec=30min
Persistent=true

[Install]
WantedBy=timers.target
`;

const DAEMON = `[Unit]
Description=cairn daemon: runs every job on its schedule from /etc/cairn/cairn.yaml
Documentation=man:cairn-daemon(1)
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/cairn -c /etc/cairn/cairn.yaml daemon
Restart=on-failure

[Install]
WantedBy=multi-user.target
`;

const CONTROL = (size: number, target: string) => `Package: cairn
Version: ${pkg.version}
Architecture: ${debArch(target)}
Maintainer: cairn developers <cairn@localhost>
Installed-Size: ${size}
Depends: libc6 (>= 2.28), libstdc++6 (>= 10), libgcc-s1
Recommends: zstd, tar
Suggests: postgresql-client, mariadb-client, redis-tools, ldap-utils, age
Section: admin
Priority: optional
Homepage: https://www.npmjs.com/package/@cairn-backup/cairn
Description: ${pkg.description.replace(/\.$/, "")}
 cairn backs up PostgreSQL, MySQL/MariaDB, Redis, MongoDB, SQLite, LDAP, mail and
 files; compresses (zstd), encrypts (age) and stores them on local disks, S3, SFTP,
 FTP, WebDAV, Swift, Azure, git, rsync or rclone; rotates, verifies and restores
 them. One self-contained executable: Node.js is built in.
`;

function put(root: string, path: string, content: string | Buffer, mode = 0o644): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

function installedSize(dir: string): number {
  return Math.ceil(
    Number(execFileSync("du", ["-sk", "--apparent-size", dir], { encoding: "utf8" }).split("\t")[0]),
  );
}

export async function buildDeb(target: string = arch()): Promise<string> {
  const exe = await buildExecutable(target);
  const tree = join(OUT, `deb-${target}`);
  rmSync(tree, { recursive: true, force: true });
  put(tree, "usr/bin/cairn", readFileSync(exe), 0o755);
  const generated = join(OUT, "shell-files");
  rmSync(generated, { recursive: true, force: true });
  writeShellFiles(generated);
  for (const page of readdirSync(join(generated, "man")))
    put(
      tree,
      `usr/share/man/man1/${page}.gz`,
      gzipSync(readFileSync(join(generated, "man", page)), { level: 9 }),
    );
  const completions = {
    bash: `usr/share/bash-completion/completions/cairn`,
    zsh: `usr/share/zsh/vendor-completions/_cairn`,
    fish: `usr/share/fish/vendor_completions.d/cairn.fish`,
  };
  for (const [shell, path] of Object.entries(completions))
    put(
      tree,
      path,
      readFileSync(join(generated, "completions", COMPLETION_FILES[shell as keyof typeof completions])),
    );
  const example = sampleConfig(createRegistry(), {
    job: "etc",
    source: "files",
    destination: "local",
    recipients: [],
  }).replace("/srv/app/uploads", "/etc");
  put(
    tree,
    "etc/cairn/cairn.example.yaml",
    `# An example: copy it to /etc/cairn/cairn.yaml and edit it, or write one with\n#   cairn init -o /etc/cairn/cairn.yaml --source postgres --destination s3 --key /root/cairn-key.txt\n${example}`,
  );
  put(tree, "lib/systemd/system/cairn@.service", SERVICE);
  put(tree, "lib/systemd/system/cairn@.timer", TIMER);
  put(tree, "lib/systemd/system/cairn-daemon.service", DAEMON);
  for (const doc of ["README.md", "CHANGELOG.md"])
    put(tree, `usr/share/doc/cairn/${doc}`, readFileSync(join(ROOT, doc)));
  put(
    tree,
    "usr/share/doc/cairn/copyright",
    `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: cairn\n\nFiles: *\nLicense: MIT\n\nFiles: usr/bin/cairn\nComment: includes Node.js (MIT) and the npm packages cairn depends on (their own licenses)\n`,
  );
  put(tree, "DEBIAN/control", CONTROL(installedSize(tree), target));
  put(tree, "DEBIAN/conffiles", "/etc/cairn/cairn.example.yaml\n");
  const deb = join(OUT, `cairn_${pkg.version}_${debArch(target)}.deb`);
  rmSync(deb, { force: true });
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "-z6", "--build", tree, deb], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (target === arch()) copyFileSync(deb, join(OUT, "cairn.deb"));
  return deb;
}

if (import.meta.main) {
  const started = Date.now();
  const deb = await buildDeb();
  const size = Number(execFileSync("stat", ["-c", "%s", deb], { encoding: "utf8" }));
  process.stdout.write(
    `${deb} (${(size / 2 ** 20).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
  );
}
