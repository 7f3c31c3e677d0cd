/**
 * A one-node OpenStack Swift on 127.0.0.1 from Debian's packages: account, container and object
 * servers on their own rings, memcached for tokens, and two proxies — one with tempauth (v1 auth,
 * as SoftLayer speaks it) and, when Keystone is installed, one with Keystone v3 (keystonemiddleware
 * in front of a throwaway Keystone on SQLite). Each server logs to a file in its temp folder.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, hasProgram, stopAtEnd, tempDir, waitForPort } from "./env.ts";

const run = promisify(execFile);

export interface SwiftAuth {
  auth_url: string;
  user: string;
  password: string;
  project?: string;
}

export interface Swift {
  /** tempauth (v1) account; its proxy listens on `v1Port`. */
  v1: SwiftAuth;
  v1Port: number;
  /** A Keystone v3 user with the member role on its project, or undefined without Keystone. */
  v3: SwiftAuth | undefined;
  dir: string;
}

export const swiftMissing = (): string | false =>
  ["swift-proxy-server", "swift-object-server", "swift-ring-builder", "memcached"].every(hasProgram)
    ? false
    : "needs Swift and memcached (.ci/system-deps installs swift-proxy, swift-object, … and memcached)";

const keystoneMissing = async (): Promise<boolean> =>
  !hasProgram("keystone-manage") ||
  !hasProgram("keystone-wsgi-public") ||
  (await run("/usr/bin/python3", ["-c", "import keystonemiddleware"]).then(
    () => false,
    () => true,
  ));

function start(dir: string, name: string, command: string, args: string[]): ChildProcess {
  const log = openSync(join(dir, `${name}.log`), "a");
  const child = spawn(command, args, { stdio: ["ignore", log, log] });
  stopAtEnd(child);
  return child;
}

const ini = (sections: Record<string, Record<string, string | number>>): string =>
  Object.entries(sections)
    .map(([name, values]) =>
      [`[${name}]`, ...Object.entries(values).map(([k, v]) => `${k} = ${v}`)].join("\n"),
    )
    .join("\n\n");

const MIDDLEWARE = [
  "catch_errors",
  "gatekeeper",
  "healthcheck",
  "proxy_logging",
  "listing_formats",
  "bulk",
  "slo",
  "dlo",
  "copy",
];

function proxyConfig(
  dir: string,
  port: number,
  memcache: number,
  auth: string[],
  extra: Record<string, Record<string, string>>,
): string {
  const pipeline = [
    "catch_errors",
    "gatekeeper",
    "healthcheck",
    "proxy-logging",
    "cache",
    "listing_formats",
    "bulk",
    "slo",
    "dlo",
    ...auth,
    "copy",
    "proxy-logging",
    "proxy-server",
  ];
  return ini({
    DEFAULT: { bind_ip: "127.0.0.1", bind_port: port, swift_dir: dir, workers: 0, log_level: "WARNING" },
    "pipeline:main": { pipeline: pipeline.join(" ") },
    "app:proxy-server": { use: "egg:swift#proxy", account_autocreate: "true" },
    "filter:cache": { use: "egg:swift#memcache", memcache_servers: `127.0.0.1:${memcache}` },
    ...Object.fromEntries(
      MIDDLEWARE.map((m) => [`filter:${m.replace("_logging", "-logging")}`, { use: `egg:swift#${m}` }]),
    ),
    ...extra,
  });
}

export async function startSwift(): Promise<Swift> {
  const dir = tempDir("cairn-swift-");
  mkdirSync(join(dir, "node", "d1"), { recursive: true });
  writeFileSync(
    join(dir, "swift.conf"),
    ini({
      "swift-hash": { swift_hash_path_suffix: "cairn-tests", swift_hash_path_prefix: "cairn-tests" },
      "storage-policy:0": { name: "gold", default: "yes" },
    }),
  );
  const keystone = (await keystoneMissing()) ? undefined : startKeystone(dir);
  keystone?.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
  const memcache = await freePort();
  const memcached = start(dir, "memcached", "memcached", [
    "-l",
    "127.0.0.1",
    "-p",
    String(memcache),
    "-U",
    "0",
    "-u",
    "nobody",
  ]);
  const servers: Promise<void>[] = [waitForPort(memcache, memcached, "memcached")];
  for (const kind of ["account", "container", "object"]) {
    const port = await freePort();
    const builder = join(dir, `${kind}.builder`);
    await run("swift-ring-builder", [builder, "create", "6", "1", "1"]);
    await run("swift-ring-builder", [builder, "add", `r1z1-127.0.0.1:${port}/d1`, "1"]);
    await run("swift-ring-builder", [builder, "rebalance"]);
    const conf = join(dir, `${kind}-server.conf`);
    writeFileSync(
      conf,
      ini({
        DEFAULT: {
          bind_ip: "127.0.0.1",
          bind_port: port,
          devices: join(dir, "node"),
          mount_check: "false",
          swift_dir: dir,
          workers: 0,
          log_level: "WARNING",
        },
        "pipeline:main": { pipeline: `${kind}-server` },
        [`app:${kind}-server`]: { use: `egg:swift#${kind}` },
      }),
    );
    servers.push(
      waitForPort(port, start(dir, kind, `swift-${kind}-server`, [conf, "-v"]), `swift-${kind}-server`),
    );
  }
  const v1Port = await freePort();
  const v1Conf = join(dir, "proxy-v1.conf");
  writeFileSync(
    v1Conf,
    proxyConfig(dir, v1Port, memcache, ["tempauth"], {
      "filter:tempauth": { use: "egg:swift#tempauth", user_cairn_backup: "v1-secret-Key9 .admin" },
    }),
  );
  servers.push(
    waitForPort(v1Port, start(dir, "proxy-v1", "swift-proxy-server", [v1Conf, "-v"]), "swift-proxy-server"),
  );
  await Promise.all(servers);

  let v3: SwiftAuth | undefined;
  if (keystone) {
    const { url, admin, storagePort } = await keystone;
    const conf = join(dir, "proxy-v3.conf");
    writeFileSync(
      conf,
      proxyConfig(dir, storagePort, memcache, ["authtoken", "keystoneauth"], {
        "filter:authtoken": {
          "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
          www_authenticate_uri: url,
          auth_url: url,
          auth_type: "password",
          interface: "public",
          project_domain_name: "Default",
          user_domain_name: "Default",
          project_name: "admin",
          username: "admin",
          password: admin,
          delay_auth_decision: "True",
          memcached_servers: `127.0.0.1:${memcache}`,
        },
        "filter:keystoneauth": { use: "egg:swift#keystoneauth", operator_roles: "admin, member" },
      }),
    );
    await waitForPort(
      storagePort,
      start(dir, "proxy-v3", "swift-proxy-server", [conf, "-v"]),
      "swift-proxy-server (keystone)",
    );
    v3 = { auth_url: url, user: "cairn", password: "v3-secret-Pw7", project: "backups" };
  }
  return {
    v1: {
      auth_url: `http://127.0.0.1:${v1Port}/auth/v1.0`,
      user: "cairn:backup",
      password: "v1-secret-Key9",
    },
    v1Port,
    v3,
    dir,
  };
}

/** Keystone on SQLite with a project "backups", its member "cairn" and an object-store endpoint. */
async function startKeystone(swiftDir: string): Promise<{ url: string; admin: string; storagePort: number }> {
  const dir = join(swiftDir, "keystone");
  for (const sub of ["fernet", "credential"]) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  const conf = join(dir, "keystone.conf");
  writeFileSync(
    conf,
    ini({
      DEFAULT: { log_file: join(dir, "keystone.log") },
      database: { connection: `sqlite:///${join(dir, "keystone.db")}` },
      token: { provider: "fernet" },
      fernet_tokens: { key_repository: join(dir, "fernet") },
      fernet_receipts: { key_repository: join(dir, "fernet") },
      credential: { key_repository: join(dir, "credential") },
    }),
  );
  const port = await freePort();
  const storagePort = await freePort();
  const url = `http://127.0.0.1:${port}/v3`;
  const admin = "admin-secret-Pw3";
  const manage = (...args: string[]) => run("keystone-manage", ["--config-file", conf, ...args]);
  const owner = ["--keystone-user", "root", "--keystone-group", "root"];
  await manage("db_sync");
  await manage("fernet_setup", ...owner);
  await manage("credential_setup", ...owner);
  await manage(
    "bootstrap",
    "--bootstrap-password",
    admin,
    "--bootstrap-public-url",
    url,
    "--bootstrap-region-id",
    "RegionOne",
  );
  const server = start(dir, "keystone-wsgi", "keystone-wsgi-public", [
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--",
    "--config-file",
    conf,
  ]);
  await waitForPort(port, server, "keystone");

  const login = await fetch(`${url}/auth/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ["password"],
          password: { user: { name: "admin", domain: { name: "Default" }, password: admin } },
        },
        scope: { project: { name: "admin", domain: { name: "Default" } } },
      },
    }),
  });
  const token = login.headers.get("x-subject-token") ?? "";
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { "x-auth-token": token, "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (response.status >= 300)
      throw new Error(`keystone ${method} ${path}: HTTP ${response.status} ${await response.text()}`);
    return response.status === 204 ? {} : ((await response.json()) as Record<string, { id: string }>);
  };
  const service = await api("POST", "/services", { service: { type: "object-store", name: "swift" } });
  await api("POST", "/endpoints", {
    endpoint: {
      service_id: service.service?.id,
      interface: "public",
      region_id: "RegionOne",
      url: `http://127.0.0.1:${storagePort}/v1/AUTH_$(project_id)s`,
    },
  });
  const project = await api("POST", "/projects", { project: { name: "backups", domain_id: "default" } });
  const user = await api("POST", "/users", {
    user: {
      name: "cairn",
      domain_id: "default",
      password: "v3-secret-Pw7",
      default_project_id: project.project?.id,
    },
  });
  const roles = (await api("GET", "/roles?name=member")) as unknown as { roles: { id: string }[] };
  await api("PUT", `/projects/${project.project?.id}/users/${user.user?.id}/roles/${roles.roles[0]?.id}`);
  return { url, admin, storagePort };
}
