// Bundles the server and CLI into one file, dist/pvc-guardian.mjs, for the container image.
import { build } from "esbuild";

await build({
  entryPoints: ["webhook/cli/main.ts"],
  outfile: "dist/pvc-guardian.mjs",
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  sourcemap: true,
  minifySyntax: true,
  legalComments: "linked",
  // Some dependencies are CommonJS and call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "info",
});
