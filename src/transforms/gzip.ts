import { createGunzip, createGzip } from "node:zlib";
import { z } from "zod";
import { defineTransform } from "../kit/contracts.ts";

export const gzipTransform = defineTransform({
  type: "gzip",
  role: "compression",
  description: "gzip compression, for tools that only read gzip",
  schema: z.object({ level: z.number().int().min(1).max(9).default(6).describe("1 (fast) … 9 (small)") }),
  create: ({ level }) => ({
    record: { type: "gzip", level },
    extension: ".gz",
    encode: () => createGzip({ level, chunkSize: 1024 * 1024 }),
  }),
  decode: () => createGunzip({ chunkSize: 1024 * 1024 }),
  shellDecode: () => "gzip -d",
});
