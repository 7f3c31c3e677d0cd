/** Schema pieces plugins share: options that parse sizes and durations the way cairn does. */
import { z } from "zod";
import { parseSize } from "./size.ts";

/**
 * A size option (`16MiB`, `1.5GiB`, a number of bytes) parsed to bytes; `invalid` says what is wrong
 * with a value that is no size or outside [min, max].
 */
export function sizeField({
  invalid,
  min = 1,
  max = Number.POSITIVE_INFINITY,
}: {
  invalid: (value: string | number) => string;
  min?: number;
  max?: number;
}) {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined || bytes < min || bytes > max) {
      ctx.addIssue({ code: "custom", message: invalid(value) });
      return z.NEVER;
    }
    return bytes;
  });
}
