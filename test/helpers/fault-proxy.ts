/**
 * A TCP proxy on 127.0.0.1 in front of a real server, that fails the way networks fail: the server
 * going away mid-transfer, connections reset as they open, a server that stops answering.
 */
import { connect, createServer, type Socket } from "node:net";

export interface FaultProxy {
  port: number;
  /** Once this many bytes have gone to the server (all connections), cut them all and refuse new ones. */
  goAwayAfterUpload(bytes: number): void;
  /** Reset the next `count` connections as soon as they open. */
  resetNext(count: number): void;
  /** Once this many bytes have come from the server, stop forwarding anything (a hung server). */
  hangAfterDownload(bytes: number): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let uploaded = 0;
  let downloaded = 0;
  let goAwayAt = Number.POSITIVE_INFINITY;
  let hangAt = Number.POSITIVE_INFINITY;
  let gone = false;
  let hung = false;
  let resets = 0;

  const cutAll = () => {
    gone = true;
    for (const [client, server] of pairs) {
      client.resetAndDestroy();
      server.destroy();
    }
    pairs.clear();
  };
  const hang = () => {
    hung = true;
    for (const [client, server] of pairs) {
      client.pause();
      server.pause();
    }
  };

  const proxy = createServer((client) => {
    if (gone || resets > 0) {
      resets = Math.max(0, resets - 1);
      client.resetAndDestroy();
      return;
    }
    const server = connect(targetPort, "127.0.0.1");
    const pair: [Socket, Socket] = [client, server];
    pairs.add(pair);
    if (hung) {
      client.pause();
      server.pause();
    }
    client.on("data", (chunk: Buffer) => {
      uploaded += chunk.length;
      if (uploaded >= goAwayAt) return cutAll();
      if (!server.write(chunk)) client.pause();
    });
    server.on("drain", () => hung || client.resume());
    server.on("data", (chunk: Buffer) => {
      downloaded += chunk.length;
      if (!client.write(chunk)) server.pause();
      if (downloaded >= hangAt) hang();
    });
    client.on("drain", () => hung || server.resume());
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on("close", end).on("error", end);
    server.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as { port: number }).port,
    goAwayAfterUpload(bytes) {
      goAwayAt = uploaded + bytes;
    },
    resetNext(count) {
      resets = count;
    },
    hangAfterDownload(bytes) {
      hangAt = downloaded + bytes;
    },
    close() {
      for (const [client, server] of pairs) {
        client.destroy();
        server.destroy();
      }
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
}
