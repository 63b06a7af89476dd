// What a CLI command may touch (webhook/cli/cli-io.ts), in memory: files and stdin given by the
// test, the clock fixed, and everything the command prints kept for assertions.

import type { CliIo } from "../../webhook/cli/cli-io.ts";

export type RecordingCliIo = CliIo & { out: string; err: string };

export function recordingCliIo(files: Record<string, string>, options: { stdin?: string; nowMs?: number } = {}): RecordingCliIo {
  const nowMs = options.nowMs ?? Date.parse("2026-11-25T12:00:00Z");
  const io: RecordingCliIo = {
    out: "",
    err: "",
    stdout: (text) => void (io.out += text),
    stderr: (text) => void (io.err += text),
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file ${path}`);
      return text;
    },
    readStdin: async () => options.stdin ?? "",
    env: {},
    now: () => nowMs,
  };
  return io;
}
