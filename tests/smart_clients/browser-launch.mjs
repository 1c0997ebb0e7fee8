// Drives one SMART launch in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core, which downloads no browser): opens the app's launch URL, logs in and approves
// on the authorization server's pages when they come, and waits for the app page (index.html)
// to write its #result. Prints one JSON line: {steps, result, urls, console, errors}.
//
// Usage: node browser-launch.mjs '{"url": "...", "username": "...", "password": "...",
//                                  "patient": "ID or null", "timeoutMs": 60000}'
// Exit status 0 when the app wrote a result without an error, 1 otherwise.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const spec = JSON.parse(process.argv[2]);
const timeout = spec.timeoutMs ?? 60000;
const executablePath = spec.executablePath ?? process.env.CHROMIUM ?? "/usr/bin/chromium";
const userDataDir = mkdtempSync(join(tmpdir(), "smart-chromium-"));
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-proxy-server", // loopback only; never a proxy from the environment
];

const report = { steps: [], result: null, urls: [], console: [], errors: [] };
let context;
try {
  // launchPersistentContext passes --user-data-dir=<fresh directory> to Chromium.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: FLAGS,
    timeout,
  });
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => report.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => report.errors.push(String(error)));
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) report.urls.push(frame.url());
  });
  const navigation = () =>
    page.waitForEvent("framenavigated", { predicate: (frame) => frame === page.mainFrame() });

  await page.goto(spec.url);
  for (let step = 0; step < 10 && report.result === null; step++) {
    const found = await page.waitForSelector(
      "#result, input[name=username], button[name=decision][value=approve]",
      { state: "attached" },
    );
    const what = await found.evaluate((element) => element.id || element.getAttribute("name"));
    if (what === "result") {
      report.result = JSON.parse(await found.textContent());
    } else if (what === "username") {
      report.steps.push("login");
      await page.fill("input[name=username]", spec.username);
      await page.fill("input[name=password]", spec.password);
      const submit = page.locator(
        "form:has(input[name=password]) button, form:has(input[name=password]) input[type=submit]",
      );
      await Promise.all([navigation(), submit.first().click()]);
    } else {
      const picker = await page.$$("input[name=patient]");
      report.steps.push(picker.length ? "consent with patient picker" : "consent");
      if (spec.patient && picker.length) {
        await page.check(`input[name=patient][value="${spec.patient}"]`);
      }
      await Promise.all([navigation(), page.click("button[name=decision][value=approve]")]);
    }
  }
} catch (error) {
  report.errors.push(String((error && error.stack) || error));
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.result && !report.result.error ? 0 : 1);
