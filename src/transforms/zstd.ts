import { constants, createZstdCompress, createZstdDecompress } from "node:zlib";
import { z } from "zod";
import { defineTransform } from "../types.ts";

export const zstdTransform = defineTransform({
  type: "zstd",
  role: "compression",
  description: "Zstandard compression (default, level 3); frames carry a checksum",
  schema: z.object({ level: z.number().int().min(1).max(19).default(3).describe("1 (fast) … 19 (small)") }),
  create: ({ level }) => ({
    record: { type: "zstd", level },
    extension: ".zst",
    encode: () =>
      createZstdCompress({
        params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
      }),
  }),
  decode: () => createZstdDecompress(),
  shellDecode: () => "zstd -d",
});
