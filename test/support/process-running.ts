// Whether a process the test started (or had started for it) still runs: signal 0 reaches it and
// it is not a zombie. Killed orphans linger as zombies until init reaps them; they run nothing.

import { readFileSync } from "node:fs";

export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
