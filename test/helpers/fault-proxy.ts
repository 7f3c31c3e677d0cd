/**
 * A TCP proxy on 127.0.0.1 in front of a real server, that fails the way networks fail: the server
 * going away mid-transfer, connections reset as they open, a server that stops answering. With
 * `ftp`, it also proxies the data connections a plain-FTP server announces (PASV/EPSV replies are
 * rewritten to point at the proxy), so transfers break too, not only the control connection.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface FaultProxy {
  port: number;
  /** Once this many bytes have gone to the server (all connections), cut them all and refuse new ones. */
  goAwayAfterUpload(bytes: number): void;
  /** Reset the next `count` connections as soon as they open. */
  resetNext(count: number): void;
  /** Once this many bytes have come from the server, stop forwarding anything (a hung server). */
  hangAfterDownload(bytes: number): void;
  /** Flip one bit of the upload byte this many bytes from now, and forward the rest as if nothing happened. */
  flipUploadByte(after: number): void;
  /** Answer the next request whose first line starts with `method` with this HTTP status, without forwarding it. */
  answerNext(method: string, status: number): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, { ftp = false } = {}): Promise<FaultProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const listeners = new Set<Server>();
  let uploaded = 0;
  let downloaded = 0;
  let goAwayAt = Number.POSITIVE_INFINITY;
  let hangAt = Number.POSITIVE_INFINITY;
  let gone = false;
  let hung = false;
  let resets = 0;
  let flipAt = Number.POSITIVE_INFINITY;
  let answer: { method: string; status: number } | undefined;

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

  async function listen(port: number, rewritePassive: boolean): Promise<number> {
    const listener = createServer((client) => forward(client, port, rewritePassive));
    listeners.add(listener);
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    return (listener.address() as { port: number }).port;
  }

  /** A passive-mode reply pointing at the proxy instead of the server. */
  async function rewrite(text: string): Promise<string> {
    const pasv = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(text);
    if (text.startsWith("227 ") && pasv) {
      const port = await listen(Number(pasv[5]) * 256 + Number(pasv[6]), false);
      return text.replace(pasv[0], `(127,0,0,1,${port >> 8},${port & 255})`);
    }
    const epsv = /\(\|\|\|(\d+)\|\)/.exec(text);
    if (text.startsWith("229 ") && epsv) {
      const port = await listen(Number(epsv[1]), false);
      return text.replace(epsv[0], `(|||${port}|)`);
    }
    return text;
  }

  function forward(client: Socket, port: number, rewritePassive: boolean): void {
    if (gone || resets > 0) {
      resets = Math.max(0, resets - 1);
      client.resetAndDestroy();
      return;
    }
    const server = connect(port, "127.0.0.1");
    const pair: [Socket, Socket] = [client, server];
    pairs.add(pair);
    if (hung) {
      client.pause();
      server.pause();
    }
    client.on("data", (chunk: Buffer) => {
      if (answer && chunk.toString("latin1", 0, answer.method.length + 1) === `${answer.method} `) {
        client.end(`HTTP/1.1 ${answer.status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        answer = undefined;
        pairs.delete(pair);
        server.destroy();
        return;
      }
      if (flipAt >= uploaded && flipAt < uploaded + chunk.length) {
        chunk[flipAt - uploaded]! ^= 0x10;
        flipAt = Number.POSITIVE_INFINITY;
      }
      uploaded += chunk.length;
      if (uploaded >= goAwayAt) return cutAll();
      if (!server.write(chunk)) client.pause();
    });
    server.on("drain", () => hung || client.resume());
    server.on("data", (chunk: Buffer) => {
      downloaded += chunk.length;
      const send = (data: Buffer) => {
        if (!client.write(data)) server.pause();
        if (downloaded >= hangAt) hang();
      };
      if (!rewritePassive) return send(chunk);
      server.pause();
      rewrite(chunk.toString("latin1")).then((text) => {
        send(Buffer.from(text, "latin1"));
        if (!hung) server.resume();
      });
    });
    client.on("drain", () => hung || server.resume());
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on("close", end).on("error", end);
    server.on("close", end).on("error", end);
  }

  const port = await listen(targetPort, ftp);
  return {
    port,
    goAwayAfterUpload(bytes) {
      goAwayAt = uploaded + bytes;
    },
    resetNext(count) {
      resets = count;
    },
    hangAfterDownload(bytes) {
      hangAt = downloaded + bytes;
    },
    flipUploadByte(after) {
      flipAt = uploaded + after;
    },
    answerNext(method, status) {
      answer = { method, status };
    },
    async close() {
      for (const [client, server] of pairs) {
        client.destroy();
        server.destroy();
      }
      await Promise.all([...listeners].map((l) => new Promise((resolve) => l.close(resolve))));
    },
  };
}
