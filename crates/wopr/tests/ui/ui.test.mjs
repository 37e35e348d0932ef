// The web UI end to end in headless Chromium (Debian's), driven by playwright-core: log in with the
// one-time link, create a session, chat with a streamed answer from the local model, invite on one
// daemon and claim on a second, revoke; every page screenshotted and checked with axe-core; a page on
// another origin can neither read nor change anything. Run by crates/wopr/tests/web_ui.rs with:
//   WOPR_UI_TOOLS  the directory holding node_modules (playwright-core, axe-core)
//   WOPR_A_LINK, WOPR_A_API, WOPR_A_TOKEN   daemon A: a `wopr ui` link, its API, its token
//   WOPR_B_LINK, WOPR_B_KEY                 daemon B: a `wopr ui` link, its public key
//   WOPR_SHOTS     where the screenshots go
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.WOPR_UI_TOOLS, "node_modules") + "/");
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = (k) => { const v = process.env[k]; assert.ok(v, `${k} is not set`); return v; };
const shots = env("WOPR_SHOTS");
const apiA = env("WOPR_A_API");

const browser = await chromium.launch({
  executablePath: process.env.WOPR_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
const step = async (name, f) => {
  try { await f(); console.log(`ok   ${name}`); } catch (e) { failures.push(name); console.log(`FAIL ${name}: ${e.stack || e}`); }
};

// axe-core through the debugging protocol (not a script tag, which the CSP rightly refuses).
async function accessible(page, what) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`), [], `${what}: accessibility`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

const a = await browser.newContext();
const pageA = await a.newPage();
pageA.on("dialog", (d) => d.accept(d.type() === "prompt" ? "renamed-b" : undefined));

await step("log in with the one-time link; the code leaves the address bar", async () => {
  await pageA.goto(env("WOPR_A_LINK"));
  const url = new URL(pageA.url());
  assert.equal(url.search + url.hash, "", `the code and the key leave the address bar: ${pageA.url()}`);
  assert.ok(await pageA.evaluate(() => sessionStorage.getItem("woprKey")), "the key is in the tab's storage");
  await pageA.getByRole("heading", { name: "Sessions" }).waitFor();
  const cookies = await a.cookies();
  const c = cookies.find((c) => c.name === "wopr_session");
  assert.ok(c && c.httpOnly && c.sameSite === "Strict", JSON.stringify(cookies));
  await shot(pageA, "sessions");
  await accessible(pageA, "sessions");
});

await step("the link works once", async () => {
  const other = await browser.newContext();
  const p = await other.newPage();
  const r = await p.goto(env("WOPR_A_LINK"));
  assert.equal(r.status(), 401);
  await other.close();
});

await step("create a session and chat with a streamed answer", async () => {
  await pageA.getByLabel("Name").fill("web");
  await pageA.getByLabel("Context").fill("You are terse.");
  await pageA.getByRole("button", { name: "Create" }).click();
  await pageA.getByRole("heading", { name: "Chat: web" }).waitFor();
  await pageA.getByLabel("Message").fill("Say hello.");
  await pageA.getByRole("button", { name: "Send" }).click();
  const done = pageA.locator(".msg[data-done=true] .text");
  await done.waitFor({ timeout: 120_000 });
  assert.ok((await done.textContent()).trim().length > 0, "the answer is empty");
  await shot(pageA, "chat");
  await accessible(pageA, "chat");
});

await step("create an invite with a QR code, claim it on a second daemon, revoke", async () => {
  await pageA.goto(`${apiA}/#peers`);
  await pageA.getByLabel("Their public key").fill(env("WOPR_B_KEY"));
  await pageA.getByLabel("Session").first().selectOption("web");
  await pageA.getByRole("button", { name: "Create invite" }).click();
  const token = (await pageA.locator("#invite-token").textContent()).trim();
  assert.match(token, /^wop1:\/\//);
  await pageA.getByRole("img", { name: "QR code of the invite" }).waitFor();
  await shot(pageA, "peers-invite");
  await accessible(pageA, "peers");

  const b = await browser.newContext();
  const pageB = await b.newPage();
  pageB.on("dialog", (d) => d.accept());
  await pageB.goto(env("WOPR_B_LINK"));
  await pageB.goto(new URL("/#peers", pageB.url()).href);
  await pageB.getByLabel("Invite token").fill(token);
  await pageB.getByRole("button", { name: "Claim" }).click();
  await pageB.getByText(/Claimed: you can reach web/).waitFor({ timeout: 60_000 });
  await pageB.getByRole("cell", { name: "web" }).first().waitFor();
  await shot(pageB, "peers-claimed");
  await b.close();

  await pageA.reload();
  const revoke = pageA.getByRole("button", { name: "Revoke" });
  await revoke.waitFor();
  await revoke.click();
  await pageA.getByText("Nobody has access.").waitFor();
  await shot(pageA, "peers-revoked");
});

await step("discover: join a topic, publish a profile; friends: add and remove an auto-accept rule", async () => {
  const topic = `ui-${process.pid}-${Date.now()}`;
  await pageA.goto(`${apiA}/#discover`);
  await pageA.getByLabel("Topic").fill(topic);
  await pageA.getByRole("button", { name: "Join" }).click();
  await pageA.getByRole("cell", { name: topic, exact: true }).waitFor();
  await pageA.getByLabel("Content (JSON)").fill('{"name": "UI test"}');
  await pageA.getByRole("button", { name: "Publish" }).click();
  await pageA.getByText(/Profile set \(\d+ bytes\) and announced/).waitFor();
  await pageA.getByLabel("Content (JSON)").fill("not json");
  await pageA.getByRole("button", { name: "Publish" }).click();
  await pageA.getByText(/must be a JSON object/).waitFor();
  await shot(pageA, "discover");
  await accessible(pageA, "discover");

  await pageA.goto(`${apiA}/#friends`);
  await pageA.getByLabel("Pattern (*, a name, or a|b)").fill("alice|bob");
  await pageA.getByRole("button", { name: "Add rule" }).click();
  await pageA.getByRole("cell", { name: "alice|bob", exact: true }).waitFor();
  await shot(pageA, "friends");
  await accessible(pageA, "friends");
  await pageA.getByRole("button", { name: "Remove rule alice|bob" }).click();
  await pageA.getByText("None: every request waits for you.").waitFor();
});

for (const page of ["audit", "providers", "sandbox", "identity", "config"]) {
  await step(`the ${page} page renders and is accessible`, async () => {
    await pageA.goto(`${apiA}/#${page}`);
    await pageA.locator("main h2").first().waitFor({ timeout: 60_000 });
    assert.equal(await pageA.locator("main .error").count(), 0, await pageA.locator("main").textContent());
    await shot(pageA, page);
    await accessible(pageA, page);
  });
}

await step("usable on a phone-width screen and by keyboard", async () => {
  await pageA.setViewportSize({ width: 390, height: 844 });
  await pageA.goto(`${apiA}/#sessions`);
  await pageA.getByRole("heading", { name: "Sessions" }).waitFor();
  const overflow = await pageA.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, "the page scrolls sideways at 390 px");
  await shot(pageA, "sessions-phone");
  await pageA.reload();
  await pageA.getByRole("heading", { name: "Sessions" }).waitFor();
  await pageA.keyboard.press("Tab");
  assert.equal(await pageA.evaluate(() => document.activeElement.textContent), "Skip to content");
  // The keyboard alone reaches a session's chat: skip link, then the first link in the page.
  await pageA.keyboard.press("Enter");
  await pageA.keyboard.press("Tab");
  await pageA.keyboard.press("Enter");
  await pageA.getByRole("heading", { name: "Chat: web" }).waitFor();
  await pageA.setViewportSize({ width: 1280, height: 800 });
});

await step("a page on another origin can neither read nor change anything", async () => {
  // The hostile page, on another port of the same machine, in the logged-in browser.
  const evil = createServer((req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><title>evil</title>
      <form id=f method=post action="${apiA}/sessions" enctype="text/plain" target=sink>
        <input name='{"name":"evil-form","x":"' value='"}'></form><iframe name=sink></iframe>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
  const p = await a.newPage();
  await p.goto(evilUrl);
  const read = await p.evaluate(async (api) => {
    try { const r = await fetch(`${api}/sessions`, { credentials: "include" }); return `read ${r.status} ${await r.text()}`; }
    catch (e) { return `refused: ${e}`; }
  }, apiA);
  assert.match(read, /^refused/, read);
  const write = await p.evaluate(async (api) => {
    try {
      await fetch(`${api}/sessions`, { method: "POST", credentials: "include", mode: "no-cors",
        headers: { "content-type": "text/plain" }, body: JSON.stringify({ name: "evil-fetch" }) });
      return "sent";
    } catch (e) { return `refused: ${e}`; }
  }, apiA);
  await p.evaluate(() => document.getElementById("f").submit());
  await p.waitForTimeout(1000);
  const list = await (await fetch(`${apiA}/sessions`, { headers: { authorization: `Bearer ${env("WOPR_A_TOKEN")}` } })).json();
  const names = list.map((s) => s.name);
  assert.ok(!names.includes("evil-fetch") && !names.includes("evil-form"), `${write}; sessions: ${names}`);
  await p.close();
  evil.close();
});

await browser.close();
if (failures.length) {
  console.log(`${failures.length} failed: ${failures.join("; ")}`);
  process.exit(1);
}
