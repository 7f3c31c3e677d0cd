import type { Storage } from "../kit/contracts.ts";

/** A Storage that forwards everything to `inner` except the operations given. */
export function wrap(
  inner: Storage,
  overrides: Partial<Pick<Storage, "put" | "get" | "stat" | "list" | "listTemporary" | "delete">>,
): Storage {
  return {
    capabilities: inner.capabilities,
    location: inner.location,
    put: (key, body, ctx) => inner.put(key, body, ctx),
    get: (key, ctx) => inner.get(key, ctx),
    stat: (key, ctx) => inner.stat(key, ctx),
    list: (prefix, ctx) => inner.list(prefix, ctx),
    delete: (key, ctx) => inner.delete(key, ctx),
    ...(inner.listTemporary ? { listTemporary: (prefix, ctx) => inner.listTemporary!(prefix, ctx) } : {}),
    ...overrides,
    ...(inner.close ? { close: () => inner.close!() } : {}),
    ...(inner.handCommand ? { handCommand: (key, op) => inner.handCommand!(key, op) } : {}),
  };
}
