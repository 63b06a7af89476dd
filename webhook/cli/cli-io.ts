// What a CLI command may touch, passed in so commands run the same in tests and in a terminal.

export type CliIo = {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readFile: (path: string) => string;
  readStdin: () => Promise<string>;
  env: Readonly<Record<string, string | undefined>>;
  now: () => number;
};
