// Puts the prebuilt browser bundle of npm `fhirclient` (client-js) into node_modules/fhirclient/
// without its ~700 transitive packages: the bundle is self-contained, and only the browser test
// loads it. The tarball comes from the registry through `npm pack` and must match the integrity
// pinned in package.json ("config.fhirclient"), as a lockfile entry would.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const { version, integrity } = JSON.parse(readFileSync(join(here, "package.json"), "utf8")).config.fhirclient;
const scratch = mkdtempSync(join(tmpdir(), "fhirclient-"));
try {
  const packed = JSON.parse(
    execFileSync("npm", ["pack", `fhirclient@${version}`, "--json", "--pack-destination", scratch], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  const tarball = join(scratch, packed[0].filename);
  const digest = "sha512-" + createHash("sha512").update(readFileSync(tarball)).digest("base64");
  if (digest !== integrity) {
    throw new Error(`fhirclient@${version}: integrity ${digest} is not the pinned ${integrity}`);
  }
  const target = join(here, "node_modules", "fhirclient");
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", target, "--strip-components=1",
    "package/package.json", "package/LICENSE", "package/build/fhir-client.js"]);
  console.log(`fhirclient@${version}: build/fhir-client.js installed (${digest.slice(0, 20)}…)`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
