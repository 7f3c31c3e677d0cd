/** Throwaway OpenLDAP servers (Debian's slapd) on 127.0.0.1, each with its own cn=config and database. */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./env.ts";

export const SUFFIX = "dc=example,dc=com";
export const ADMIN = `cn=admin,${SUFFIX}`;
export const ADMIN_PASSWORD = "ldap-admin-secret-5";

export interface Slapd {
  uri: string;
  configDir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every entry under the suffix with its user attributes, normalized for comparison. */
  entries(): string[];
  add(ldif: string): void;
}

function ldap(tool: string, args: string[], input?: string): string {
  const result = spawnSync(tool, args, { input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${tool} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

export async function startSlapd(dir: string): Promise<Slapd> {
  const configDir = join(dir, "slapd.d");
  const dataDir = join(dir, "data");
  mkdirSync(configDir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dir, "config.ldif"),
    `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${join(dir, "slapd.pid")}

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file:///etc/ldap/schema/nis.ldif

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 100

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${SUFFIX}
olcDbDirectory: ${dataDir}
olcRootDN: ${ADMIN}
olcRootPW: ${ADMIN_PASSWORD}
olcSizeLimit: 100
olcDbMaxSize: 268435456
`,
  );
  ldap("slapadd", ["-n0", "-F", configDir, "-l", join(dir, "config.ldif")]);
  const port = await freePort();
  const uri = `ldap://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const bind = ["-x", "-H", uri, "-D", ADMIN, "-w", ADMIN_PASSWORD];
  const slapd: Slapd = {
    uri,
    configDir,
    async start() {
      server = spawn("slapd", ["-F", configDir, "-h", `${uri}/`, "-d", process.env.SLAPD_DEBUG ?? "0"], {
        stdio: ["ignore", "ignore", process.env.SLAPD_DEBUG ? "inherit" : "ignore"],
      });
      server.on("exit", (code, signal) => process.env.SLAPD_DEBUG && console.log("slapd exit", code, signal));
      for (let i = 0; i < 300; i++) {
        const probe = spawnSync("ldapsearch", [...bind, "-LLL", "-s", "base", "-b", "", "1.1"]);
        if (probe.status === 0) return;
        if (server.exitCode !== null || server.signalCode !== null)
          throw new Error(`slapd exited (${server.exitCode ?? server.signalCode}) on port ${port}`);
        await sleep(100);
      }
      throw new Error("slapd did not answer within 30 s");
    },
    async stop() {
      if (!server || server.exitCode !== null || server.signalCode !== null) return;
      const exited = new Promise((resolve) => server!.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    },
    entries() {
      const result = spawnSync(
        "ldapsearch",
        [
          ...bind,
          "-LLL",
          "-o",
          "ldif-wrap=no",
          "-E",
          "pr=200/noprompt",
          "-b",
          SUFFIX,
          "(objectClass=*)",
          "*",
        ],
        { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
      );
      if (result.status === 32) return [];
      if (result.status !== 0) throw new Error(`ldapsearch failed: ${result.stderr}`);
      return result.stdout
        .split(/\n\n+/)
        .map((entry) =>
          entry
            .split("\n")
            .filter((line) => line && !line.startsWith("#"))
            .sort()
            .join("\n"),
        )
        .filter(Boolean)
        .sort();
    },
    add(ldif: string) {
      ldap("ldapadd", bind, ldif);
    },
  };
  after(() => slapd.stop());
  await slapd.start();
  return slapd;
}

/** A directory with awkward content: unicode and escaped DNs, binary photos, hashed passwords, more entries than one page. */
export function awkwardDirectory(people = 600): string {
  const entries = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example ÜñÏ`,
    `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: cn=Smith\\, John,ou=people,${SUFFIX}\nobjectClass: inetOrgPerson\ncn: Smith, John\nsn: Smith\nmail: john@example.com\nmail: js@example.com`,
  ];
  for (let i = 0; i < people; i++) {
    const photo = randomBytes(3000).toString("base64");
    entries.push(
      `dn: uid=user${i},ou=people,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: user${i}\ncn:: ${Buffer.from(`Ünïcødé Üser ${i} 🐘`).toString("base64")}\nsn: User\nuserPassword: {SSHA}${Buffer.from(`hash-${i}-salt`).toString("base64")}\njpegPhoto:: ${photo}\ndescription: line ${i}`,
    );
  }
  entries.push(
    `dn: cn=staff,ou=groups,${SUFFIX}\nobjectClass: groupOfNames\ncn: staff\n${Array.from({ length: 50 }, (_, i) => `member: uid=user${i},ou=people,${SUFFIX}`).join("\n")}`,
  );
  return `${entries.join("\n\n")}\n`;
}
