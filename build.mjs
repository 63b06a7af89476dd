// Bundles the server and CLI into one file, dist/pvc-guardian.mjs, for the container image.
import { build } from "esbuild";

await build({
  entryPoints: ["webhook/cli/main.ts"],
  outdir: "dist",
  entryNames: "pvc-guardian",
  outExtension: { ".js": ".mjs" },
  // Code only some deployments run (@kubernetes/client-node, for kubeconfig users with exec
  // plugins or auth providers) goes to its own file under dist/chunks/, read only when imported.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
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
