/**
 * Progress display: a one-line bar on a terminal (step, loss, tokens/s, ETA),
 * plain lines elsewhere (CI logs, pipes), never both.
 */
export interface ProgressInfo {
  loss: number;
  tokensPerSecond: number;
  elapsed: number;
}

export class Progress {
  private readonly tty: boolean;
  private lastPlain = 0;
  private startStep = 0;
  private startTime = 0;
  private barShown = false;

  /** `total` steps, or (a --budget run) `budget` seconds of training. */
  constructor(
    private readonly total: number,
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly budget: number | null = null,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  start(step: number, title: string): void {
    this.startStep = step;
    this.startTime = performance.now();
    this.lastPlain = performance.now();
    if (this.enabled) this.line(title);
  }

  update(step: number, info: ProgressInfo): void {
    if (!this.enabled) return;
    let text: string, fraction: number;
    if (this.budget !== null) {
      fraction = Math.min(1, info.elapsed / this.budget);
      text = `step ${step}  ${formatSeconds(info.elapsed)} of ${formatSeconds(this.budget)}  loss ${info.loss.toFixed(4)}  ${Math.round(info.tokensPerSecond)} tok/s`;
    } else {
      const done = step - this.startStep;
      const rate = done / ((performance.now() - this.startTime) / 1000);
      const eta = rate > 0 ? (this.total - step) / rate : 0;
      fraction = step / this.total;
      text = `step ${step}/${this.total}  loss ${info.loss.toFixed(4)}  ${Math.round(info.tokensPerSecond)} tok/s  ETA ${formatSeconds(eta)}`;
    }
    if (this.tty) {
      const width = 24;
      const filled = Math.round(width * fraction);
      this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
      this.barShown = true;
    } else if (performance.now() - this.lastPlain > 10_000 || fraction >= 1) {
      this.lastPlain = performance.now();
      this.line(text);
    }
  }

  /** A message on its own line (eval results, untie events). */
  note(message: string): void {
    if (this.enabled) this.line(message);
  }

  finish(): void {
    if (this.enabled && this.barShown) this.stream.write('\n');
    this.barShown = false;
  }

  private line(text: string): void {
    if (this.barShown) this.stream.write('\r\x1b[K'); // the bar is redrawn on the next update
    this.barShown = false;
    this.stream.write(text + '\n');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}
