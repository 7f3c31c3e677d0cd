import { readFileSync } from "node:fs";

/** cairn's version, from package.json (two folders up from both src/kit/ and dist/kit/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
