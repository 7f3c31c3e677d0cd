/** The local destination passes the conformance suite on the machine's own disk. */
import { LocalStorage } from "../../src/storages/local.ts";
import { tempDir } from "../helpers/env.ts";
import { conformance } from "./conformance.ts";

conformance("local", async () => ({ storage: new LocalStorage(tempDir()) }));
