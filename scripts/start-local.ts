// `npm start`: runs pvc-guardian on this machine with an embedded default: a development CA and
// serving certificate under certs/dev/ (made if absent), a local repository path under .local/,
// no Kubernetes API access, and https://127.0.0.1:8443. Prints a ready curl command.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const certDir = path.join(root, "certs", "dev");
const localDir = path.join(root, ".local");
const repositoryPath = path.join(localDir, "repository");
const passwordFile = path.join(localDir, "repository.password");
const port = process.env["PVC_GUARDIAN_PORT"] ?? "8443";

execFileSync(process.execPath, [path.join(root, "certs", "generate-dev-certs.ts"), certDir], { stdio: "inherit" });

mkdirSync(localDir, { recursive: true });
if (!existsSync(passwordFile)) writeFileSync(passwordFile, "pvc-guardian-dev\n", { mode: 0o600 });

// A real, empty Kopia repository makes the demo answer `fresh`. It needs the kopia binary the
// test harness builds; without it the repository stays absent and every protected PVC is
// `unknown`, which is the honest answer.
const kopia = path.join(process.env["PVC_GUARDIAN_CACHE"] ?? path.join(homedir(), ".cache", "pvc-guardian"), "bin", "kopia-v0.22.3");
if (!existsSync(path.join(repositoryPath, "kopia.repository.f"))) {
  if (existsSync(kopia)) {
    mkdirSync(repositoryPath, { recursive: true });
    execFileSync(
      kopia,
      ["repository", "create", "filesystem", `--path=${repositoryPath}`, `--config-file=${path.join(localDir, "kopia.config")}`,
        `--cache-directory=${path.join(localDir, "kopia-cache")}`, "--password=pvc-guardian-dev", "--no-persist-credentials"],
      { stdio: "ignore", env: { ...process.env, KOPIA_CHECK_FOR_UPDATES: "false" } },
    );
    console.log(`created an empty Kopia repository at ${repositoryPath}`);
  } else {
    console.log(`no Kopia repository at ${repositoryPath} (build kopia with test/harness/build-binaries.sh kopia to get one): protected PVCs will be denied as unknown`);
  }
}

const fixture = path.join(root, "test", "fixtures", "admission", "protected-create.json");
const curl = (route: string) =>
  `curl --cacert ${path.relative(process.cwd(), path.join(certDir, "ca.crt"))} -H 'Content-Type: application/json' ` +
  `--data @${path.relative(process.cwd(), fixture)} https://127.0.0.1:${port}/${route}`;
console.log(`\npvc-guardian is starting on https://127.0.0.1:${port}. Try:\n\n  ${curl("validate-v1-pvc")}\n  ${curl("mutate-v1-pvc")}\n`);

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
