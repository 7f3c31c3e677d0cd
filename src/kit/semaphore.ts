/** A counting semaphore whose waits end when the signal aborts. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.free = slots;
  }
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.free > 0) this.free--;
    else
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener("abort", abort);
          resolve();
        };
        const abort = () => {
          this.waiting.splice(this.waiting.indexOf(wake), 1);
          reject(signal.reason);
        };
        if (signal.aborted) return reject(signal.reason);
        signal.addEventListener("abort", abort, { once: true });
        this.waiting.push(wake);
      });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
