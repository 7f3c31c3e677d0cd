import { PassThrough } from "node:stream";
import { z } from "zod";
import { defineTransform } from "../kit/contracts.ts";

export const noCompression = defineTransform({
  type: "none",
  role: "compression",
  description: "No compression (for data that is already compressed)",
  schema: z.object({}),
  create: () => ({ record: { type: "none" }, extension: "", encode: () => new PassThrough() }),
  decode: () => new PassThrough(),
  shellDecode: () => "cat",
});
