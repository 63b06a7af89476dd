import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { errorMessage } from "../domain/error-message.ts";
import type { CliIo } from "./cli-io.ts";

// Every command reads its flags the same way: strictly, so an unknown flag, a missing value or a
// stray argument is a usage error (the message and the usage on stderr, exit 2), and -h/--help
// prints the usage and exits 0.

type HelpOption = { help: { type: "boolean"; short: "h" } };

type OptionValues<Options extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ options: Options; strict: true; allowPositionals: false }>>["values"];

/** The flags' values, or the exit code when the command ends with its usage. */
export type CommandOptions<Options extends ParseArgsOptionsConfig> = { ok: true; values: OptionValues<Options> } | { ok: false; exitCode: number };

export function parseCommandOptions<const Options extends ParseArgsOptionsConfig & HelpOption>(
  args: string[],
  options: Options,
  usage: string,
  io: Pick<CliIo, "stdout" | "stderr">,
): CommandOptions<Options> {
  let values: OptionValues<Options>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (error) {
    io.stderr(`${errorMessage(error)}\n${usage}`);
    return { ok: false, exitCode: 2 };
  }
  if ((values as { help?: boolean }).help) {
    io.stdout(usage);
    return { ok: false, exitCode: 0 };
  }
  return { ok: true, values };
}
