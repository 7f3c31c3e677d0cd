/**
 * age's ASCII armor (PEM-like, `age -a`), decoded on the fly. Binary input passes through untouched,
 * so one decrypt stream reads both forms, as the `age` tool does.
 */

const HEADER = "-----BEGIN AGE ENCRYPTED FILE-----";
const FOOTER = "-----END AGE ENCRYPTED FILE-----";
const COLUMNS = 64;
const BYTES_PER_LINE = (COLUMNS / 4) * 3;
const MAX_WHITESPACE = 1024;
const MAX_LINE = 4096;

export class AgeArmorError extends Error {
  override name = "AgeArmorError";
}

type State = "sniff" | "binary" | "leading" | "body" | "footer" | "trailing";

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x0b || byte === 0x0c;
}

function decodeStrictBase64(line: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length % 4 !== 0)
    throw new AgeArmorError("armored age file holds invalid base64");
  const bytes = Buffer.from(line, "base64");
  if (bytes.toString("base64") !== line)
    throw new AgeArmorError("armored age file holds non-canonical base64");
  return bytes;
}

/** Feed it the input as it comes; it returns the binary age bytes (throws AgeArmorError). */
export class ArmorReader {
  private state: State = "sniff";
  private buffered: Buffer = Buffer.alloc(0);
  private whitespace = 0;
  private out: Buffer[] = [];

  private push(bytes: Buffer): void {
    if (bytes.length) this.out.push(bytes);
  }

  private take(): Buffer[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  feed(chunk: Buffer): Buffer[] {
    if (this.state === "binary") return [chunk];
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.process(false);
    return this.take();
  }

  finish(): Buffer[] {
    this.process(true);
    if (this.state === "sniff" || this.state === "binary") this.push(this.buffered);
    else if (this.state !== "trailing")
      throw new AgeArmorError("armored age file is truncated (no END line)");
    this.buffered = Buffer.alloc(0);
    return this.take();
  }

  private process(final: boolean): void {
    if (this.state === "sniff") {
      const firstNonSpace = this.buffered.findIndex((b) => !isSpace(b));
      if (firstNonSpace === -1) return;
      if (this.buffered[firstNonSpace] !== 0x2d /* - */) {
        this.state = "binary";
        this.push(this.buffered);
        this.buffered = Buffer.alloc(0);
        return;
      }
      this.state = "leading";
    }
    for (;;) {
      if (this.state === "trailing") {
        this.whitespace += this.buffered.length;
        if (this.buffered.some((b) => !isSpace(b)))
          throw new AgeArmorError("data after the END line of an armored age file");
        if (this.whitespace >= MAX_WHITESPACE)
          throw new AgeArmorError("too much whitespace after an armored age file");
        this.buffered = Buffer.alloc(0);
        return;
      }
      const end = this.buffered.indexOf(0x0a);
      let line: string;
      if (end === -1) {
        if (this.buffered.length > MAX_LINE) throw new AgeArmorError("armored age file has an overlong line");
        if (!final || this.buffered.length === 0) return;
        line = this.buffered.toString("latin1");
        this.buffered = Buffer.alloc(0);
      } else {
        line = this.buffered.toString("latin1", 0, end);
        this.buffered = this.buffered.subarray(end + 1);
      }
      if (line.endsWith("\r")) line = line.slice(0, -1);
      this.line(line);
    }
  }

  private line(line: string): void {
    switch (this.state) {
      case "leading":
        if (line.trim() === "") {
          this.whitespace += line.length + 1;
          if (this.whitespace > MAX_WHITESPACE)
            throw new AgeArmorError("too much whitespace before an armored age file");
          return;
        }
        if (line !== HEADER) throw new AgeArmorError("armored age file does not start with the BEGIN line");
        this.state = "body";
        this.whitespace = 0;
        return;
      case "body": {
        if (line === FOOTER) {
          this.state = "trailing";
          return;
        }
        if (line.length === 0)
          throw new AgeArmorError("armored age file has an empty line before its END line");
        if (line.length > COLUMNS)
          throw new AgeArmorError("armored age file has a line longer than 64 columns");
        const bytes = decodeStrictBase64(line);
        this.push(bytes);
        if (bytes.length < BYTES_PER_LINE) this.state = "footer";
        return;
      }
      case "footer":
        if (line !== FOOTER)
          throw new AgeArmorError("armored age file: a short line must be followed by the END line");
        this.state = "trailing";
        return;
      default:
        throw new AgeArmorError("unexpected armored age content");
    }
  }
}
