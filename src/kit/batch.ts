/**
 * Calls that arrive while earlier ones are running are gathered and handled together by the next
 * run: the first call of a quiet moment goes alone (no added latency), a burst (the many parts of
 * one snapshot) becomes a few runs instead of one per call.
 */
export class Batcher<Item, Result> {
  private readonly queue: {
    item: Item;
    resolve: (result: Result) => void;
    reject: (error: unknown) => void;
  }[] = [];
  private running = 0;
  private readonly handle: (items: Item[]) => Promise<(Result | Error)[]>;
  private readonly parallel: number;
  private readonly most: number;

  /** `handle` answers each item in order, with its result or its own error; a throw fails them all. */
  constructor(handle: (items: Item[]) => Promise<(Result | Error)[]>, parallel = 1, most = 200) {
    this.handle = handle;
    this.parallel = parallel;
    this.most = most;
  }

  add(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.parallel && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.most);
      this.running++;
      this.handle(batch.map((entry) => entry.item))
        .then(
          (results) =>
            batch.forEach((entry, i) => {
              const result = results[i];
              if (result instanceof Error) entry.reject(result);
              else entry.resolve(result as Result);
            }),
          (error: unknown) => {
            for (const entry of batch) entry.reject(error);
          },
        )
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }
}
