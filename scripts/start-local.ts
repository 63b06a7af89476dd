// `npm start`: runs pvc-guardian on this machine with an embedded default: a development CA and
// serving certificate under certs/dev/ (made if absent), a local repository path under .local/,
// no Kubernetes API access, and https://127.0.0.1:8443. Prints a ready curl command.

import { execFileSync, spawn } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defaultConfig } from "../webhook/config.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const certDir = path.join(root, "certs", "dev");
const localDir = path.join(root, ".local");
const repositoryPath = path.join(localDir, "repository");
const passwordFile = path.join(localDir, "repository.password");
const port = process.env["PVC_GUARDIAN_PORT"] ?? String(defaultConfig().listen.port);

execFileSync(process.execPath, [path.join(root, "certs", "generate-dev-certs.ts"), certDir], { stdio: "inherit" });

mkdirSync(localDir, { recursive: true });

// A copy of the small real Kopia repository the tests use (test/fixtures/kopia-repository, made
// by kopia v0.22.3): media/app-data has backups (restore), any other PVC has none (fresh). No
// kopia binary or Go toolchain needed.
const fixtureRepository = path.join(root, "test", "fixtures", "kopia-repository");
if (!existsSync(path.join(repositoryPath, "kopia.repository.f"))) {
  cpSync(path.join(fixtureRepository, "repository"), repositoryPath, { recursive: true });
  copyFileSync(path.join(fixtureRepository, "password"), passwordFile);
  chmodSync(passwordFile, 0o600);
  console.log(`copied the example Kopia repository to ${repositoryPath}`);
}

const reviews = path.join(root, "test", "fixtures", "admission");
const curl = (route: string, review: string) =>
  `curl --cacert ${path.relative(process.cwd(), path.join(certDir, "ca.crt"))} -H 'Content-Type: application/json' ` +
  `--data @${path.relative(process.cwd(), path.join(reviews, review))} https://127.0.0.1:${port}/${route}`;
console.log(
  `\npvc-guardian is starting on https://127.0.0.1:${port}. Try:\n\n` +
    `  # media/app-data has backups: the mutator adds the dataSourceRef that restores it\n  ${curl("mutate-v1-pvc", "protected-create.json")}\n` +
    `  # media/new-app has none: the validator allows it, to start empty\n  ${curl("validate-v1-pvc", "protected-new-create.json")}\n`,
);

const child = spawn(process.execPath, [path.join(root, "webhook", "cli", "main.ts"), "serve"], {
  stdio: "inherit",
  env: {
    ...process.env,
    PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
    PVC_GUARDIAN_PORT: port,
    PVC_GUARDIAN_TLS_CERT_FILE: path.join(certDir, "tls.crt"),
    PVC_GUARDIAN_TLS_KEY_FILE: path.join(certDir, "tls.key"),
    PVC_GUARDIAN_REPOSITORY_PATH: repositoryPath,
    PVC_GUARDIAN_PASSWORD_FILE: passwordFile,
    PVC_GUARDIAN_KUBERNETES: "off",
  },
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
