/**
 * `npm run bench:uploads`: `cairn upload` of one incompressible file against the peer tool for the
 * same protocol, to the same server on 127.0.0.1, in the same run (target: ≥ 0.9× their
 * throughput, flat memory):
 *
 *   S3 (s3rver):       cairn upload … s3://   vs   rclone copyto (s3 backend)   (aws s3 cp: not in Debian 12's main)
 *   SFTP (OpenSSH):    cairn upload … sftp:// vs   scp
 *   FTPS (pure-ftpd):  cairn upload … ftp://  vs   curl --ssl-reqd -T
 *   WebDAV (Apache):   cairn upload … webdav:// vs curl -T
 *
 * Environment: BENCH_RUNS (default 3), BENCH_UPLOAD_MB (default 512), BENCH_ONLY (e.g. SFTP,S3).
 * Needs what the tests need (.ci/system-deps), plus /usr/bin/time.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { startApacheDav } from "../test/helpers/apache.ts";
import { startFtpd } from "../test/helpers/ftpd.ts";
import { startS3rver } from "../test/helpers/s3.ts";
import { startSshd } from "../test/helpers/sshd.ts";

const ROOT = resolve(import.meta.dirname, "..");
const WORK = join(ROOT, ".bench");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MB = Number(process.env.BENCH_UPLOAD_MB ?? 512);
const ONLY = process.env.BENCH_ONLY?.split(",").map((name) => name.trim().toLowerCase());
const wanted = (name: string) => !ONLY || ONLY.includes(name.toLowerCase());

function measure(command: string, env: Record<string, string> = {}): { seconds: number; rssMB: number } {
  const result = spawnSync(
    "bash",
    [
      "-o",
      "pipefail",
      "-c",
      `/usr/bin/time -f '__TIME__ %e %M' bash -o pipefail -c ${JSON.stringify(command)} 2>&1 >/dev/null | grep __TIME__`,
    ],
    { encoding: "utf8", env: { ...process.env, ...env } },
  );
  if (result.status !== 0) throw new Error(`failed: ${command}\n${result.stderr}${result.stdout}`);
  const [, seconds, kb] = result.stdout.trim().split(/\s+/);
  return { seconds: Number(seconds), rssMB: Number(kb) / 1024 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const file = join(WORK, `upload-${MB}.bin`);
  const fd = openSync(file, "w");
  for (let i = 0; i < MB; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);
  const cli = `${process.execPath} ${join(ROOT, "entry/cairn.js")}`;
  let n = 0;
  const key = () => `bench-${process.pid}-${n++}`;
  const cases: {
    name: string;
    peer: string;
    cairn: () => string;
    theirs: () => string;
    env?: Record<string, string>;
  }[] = [];

  if (wanted("S3")) {
    const { endpoint } = await startS3rver(["cairn-bench"]);
    cases.push({
      name: "S3",
      peer: "rclone copyto",
      env: { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" },
      cairn: () =>
        `${cli} upload ${file} 's3://cairn-bench/c?endpoint=${endpoint}&path_style=true' --name ${key()}`,
      // rclone's s3 backend refuses to start when AWS_CA_BUNDLE is set (as on some CI machines);
      // the size check makes a failed copy fail the bench instead of looking fast.
      theirs: () => {
        const remote = `:s3,provider=Other,endpoint=${endpoint},access_key_id=S3RVER,secret_access_key=S3RVER,force_path_style=true:cairn-bench/r/${key()}`;
        return `env -u AWS_CA_BUNDLE rclone copyto ${file} '${remote}' && env -u AWS_CA_BUNDLE rclone size --json '${remote}' | grep -q '"bytes":${MB * 1024 * 1024}'`;
      },
    });
  }
  if (wanted("SFTP")) {
    const sshd = await startSshd();
    const ssh = `-i ${sshd.clientKey} -o UserKnownHostsFile=${sshd.knownHosts} -o BatchMode=yes`;
    cases.push({
      name: "SFTP",
      peer: "scp",
      cairn: () =>
        `${cli} upload ${file} 'sftp://root@127.0.0.1:${sshd.port}/bench?private_key_file=${sshd.clientKey}&known_hosts=${sshd.knownHosts}' --name ${key()}`,
      theirs: () => `scp -q ${ssh} -P ${sshd.port} ${file} root@127.0.0.1:${key()}`,
    });
  }
  if (wanted("FTPS")) {
    const ftpd = await startFtpd();
    const pw = join(WORK, "ftp.pw");
    spawnSync("sh", ["-c", `printf %s '${ftpd.password}' > ${pw}`]);
    cases.push({
      name: "FTPS",
      peer: "curl --ssl-reqd -T",
      cairn: () =>
        `${cli} upload ${file} 'ftp://${ftpd.user}@127.0.0.1:${ftpd.port}/bench?password_file=${pw}&ca_file=${ftpd.certificate}' --name ${key()}`,
      theirs: () =>
        `curl -s --ssl-reqd --cacert ${ftpd.certificate} -u ${ftpd.user}:${ftpd.password} -T ${file} ftp://127.0.0.1:${ftpd.port}/${key()}`,
    });
  }
  if (wanted("WebDAV")) {
    const dav = await startApacheDav();
    const pw = join(WORK, "dav.pw");
    spawnSync("sh", ["-c", `printf %s '${dav.password}' > ${pw}`]);
    const host = dav.url.replace(/^http:\/\//, "");
    cases.push({
      name: "WebDAV",
      peer: "curl -T",
      cairn: () =>
        `${cli} upload ${file} 'webdav://${dav.user}@${host}/bench?password_file=${pw}' --name ${key()}`,
      theirs: () => `curl -sf -u ${dav.user}:${dav.password} -T ${file} ${dav.url}/${key()}`,
    });
  }

  const rows: string[] = [];
  for (const c of cases) {
    const ours: { seconds: number; rssMB: number }[] = [];
    const theirs: { seconds: number; rssMB: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      theirs.push(measure(c.theirs(), c.env));
      ours.push(measure(c.cairn(), c.env));
      console.error(
        `${c.name} run ${i + 1}: ${c.peer} ${theirs.at(-1)!.seconds}s, cairn ${ours.at(-1)!.seconds}s`,
      );
    }
    const t = median(theirs.map((m) => m.seconds));
    const o = median(ours.map((m) => m.seconds));
    rows.push(
      `| ${c.name} | ${c.peer} | ${(MB / t).toFixed(0)} MiB/s | ${(MB / o).toFixed(0)} MiB/s | **${(t / o).toFixed(2)}×** | ${median(ours.map((m) => m.rssMB)).toFixed(0)} MB |`,
    );
  }
  console.log(`\n${MB} MiB of random bytes, ${RUNS} runs (median), node ${process.version}, loopback`);
  console.log("| protocol | peer | peer throughput | cairn throughput | cairn / peer | cairn peak RSS |");
  console.log("|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  process.exit(0);
}

await main();
