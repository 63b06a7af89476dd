// The real server for the benchmark, started the way `pvc-guardian serve` starts it: configuration
// from the environment, pino logging one line per review to stdout, and main.ts's composition.

import { pino } from "pino";
import { loadConfig } from "../../webhook/config.ts";
import { startGuardian } from "../../webhook/main.ts";

const loaded = loadConfig(process.env);
if (!loaded.ok) {
  process.stderr.write(`guardian-child: ${loaded.problems.join("; ")}\n`);
  process.exit(1);
}
const log = pino({ level: loaded.config.logLevel, base: { service: "pvc-guardian" } });
const running = await startGuardian(loaded.config, log);
process.send?.({ port: running.port });
process.on("message", (message) => {
  if (message === "stop") void running.stop().then(() => process.exit(0));
});
