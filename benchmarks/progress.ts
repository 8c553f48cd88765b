// Progress on a terminal: a bar per scenario (cli-progress) on a TTY, one line per scenario otherwise.
import cliProgress from "cli-progress";

export interface Progress {
  begin(label: string, total: number): void;
  tick(count?: number): void;
  end(summary: string): void;
  log(message: string): void;
}

export const silentProgress: Progress = { begin() {}, tick() {}, end() {}, log() {} };

class TerminalProgress implements Progress {
  private bar: cliProgress.SingleBar | undefined;

  begin(label: string, total: number): void {
    this.bar = new cliProgress.SingleBar(
      { format: `${label.padEnd(34)} [{bar}] {percentage}% {value}/{total} {duration_formatted}`, hideCursor: true, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(Math.max(1, total), 0);
  }

  tick(count = 1): void {
    this.bar?.increment(count);
  }

  end(summary: string): void {
    this.bar?.stop();
    this.bar = undefined;
    process.stderr.write(`  ${summary}\n`);
  }

  log(message: string): void {
    process.stderr.write(`${message}\n`);
  }
}

class LineProgress implements Progress {
  begin(label: string): void {
    process.stderr.write(`${label} ...\n`);
  }
  tick(): void {}
  end(summary: string): void {
    process.stderr.write(`  ${summary}\n`);
  }
  log(message: string): void {
    process.stderr.write(`${message}\n`);
  }
}

export function progressFor(stream: NodeJS.WriteStream): Progress {
  return stream.isTTY ? new TerminalProgress() : new LineProgress();
}
