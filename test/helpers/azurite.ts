/** Azurite (Microsoft's Azure Storage emulator, from npm) serving blobs on 127.0.0.1, stopped after the test file. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { freePort, ROOT, stopAtEnd, tempDir, waitForPort } from "./env.ts";

export interface Azurite {
  port: number;
  endpoint: string;
  account: string;
  key: string;
}

/** Azurite's well-known development account (public, the same in every Azurite). */
const ACCOUNT = "devstoreaccount1";
const KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export async function startAzurite(): Promise<Azurite> {
  const port = await freePort();
  const server: ChildProcess = spawn(
    join(ROOT, "node_modules/.bin/azurite-blob"),
    [
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      `${port}`,
      "--location",
      tempDir("cairn-azurite-"),
      "--silent",
      "--skipApiVersionCheck",
    ],
    { stdio: "ignore" },
  );
  stopAtEnd(server);
  await waitForPort(port, server, "azurite");
  return { port, endpoint: `http://127.0.0.1:${port}/${ACCOUNT}`, account: ACCOUNT, key: KEY };
}
