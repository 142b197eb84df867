// Browser test of the kiosk page, end to end: Debian's headless Chromium (driven by
// playwright-core) → mosquitto's WebSockets listener → a real packd → reply rendered.
//
//   (cd kiosk/tests && npm ci) && node --test kiosk/tests/kiosk.test.mjs
//   KIOSK_SCREENSHOTS=1 node --test kiosk/tests/kiosk.test.mjs   # also rewrites docs/kiosk-*.png
//
// Needs /usr/sbin/mosquitto and /usr/bin/chromium (apt-get install mosquitto chromium); builds
// target/debug/packd with cargo when it is missing (PACKD_BIN=… to use another binary).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KIOSK = path.resolve(HERE, "..");
const ROOT = path.resolve(KIOSK, "..");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const MOSQUITTO = process.env.MOSQUITTO_BIN || "/usr/sbin/mosquitto";
const PACKD = process.env.PACKD_BIN || path.join(ROOT, "target/debug/packd");
const SHOTS = process.env.KIOSK_SCREENSHOTS === "1";
const TERMS = JSON.parse(fs.readFileSync(path.join(KIOSK, "terms.json"), "utf8"));
const WAIT = 30_000; // upper bound for any one wait; nothing sleeps a fixed time

const children = [];
const logs = { mosquitto: "", packd: "", console: [] };
let tmp, server, context, page, ports;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function start(name, cmd, args) {
  // PACKD_BIN is this script's setting, not packd's: every PACKD_* variable is a packd
  // configuration key, and an unknown one makes packd refuse to start.
  const { PACKD_BIN: _ours, ...inherited } = process.env;
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...inherited, RUST_BACKTRACE: "1" } });
  const keep = (d) => { logs[name] = ((logs[name] || "") + d.toString()).slice(-20_000); };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  children.push(child);
  return child;
}

async function waitForPort(port, child, name) {
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${logs[name]}`);
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, "127.0.0.1", () => { sock.destroy(); resolve(true); });
      sock.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50)); // poll interval, not a fixed wait for an outcome
  }
  throw new Error(`${name} did not listen on ${port}:\n${logs[name]}`);
}

function killAll() {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      try { child.kill("SIGKILL"); } catch (_) { /* already gone */ }
    }
  }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { killAll(); process.exit(130); });

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8", ".png": "image/png", ".md": "text/markdown; charset=utf-8" };

function serveKiosk() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      const url = new URL(req.url, "http://x");
      let file = path.normalize(path.join(KIOSK, decodeURIComponent(url.pathname)));
      if (!file.startsWith(KIOSK) || file.startsWith(path.join(KIOSK, "tests"))) { res.writeHead(403).end(); return; }
      if (url.pathname.endsWith("/")) file = path.join(file, "index.html");
      fs.readFile(file, (err, body) => {
        if (err) { res.writeHead(404).end(); return; }
        res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "cache-control": "no-store" });
        res.end(body);
      });
    });
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

before(async () => {
  for (const bin of [CHROMIUM, MOSQUITTO]) assert.ok(fs.existsSync(bin), `${bin} is missing (apt-get install -y chromium mosquitto)`);
  if (!process.env.PACKD_BIN && !fs.existsSync(PACKD)) {
    const build = spawnSync("cargo", ["build", "--bin", "packd"], { cwd: ROOT, stdio: "inherit" });
    assert.equal(build.status, 0, "cargo build --bin packd failed");
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "packd-kiosk-"));
  ports = { tcp: await freePort(), ws: await freePort() };

  const conf = path.join(tmp, "mosquitto.conf");
  fs.writeFileSync(conf, [
    ...(process.getuid && process.getuid() === 0 ? ["user root"] : []),
    "persistence false",
    "allow_anonymous true",
    "set_tcp_nodelay true",
    "log_dest stderr",
    `listener ${ports.tcp} 127.0.0.1`,
    `listener ${ports.ws} 127.0.0.1`,
    "protocol websockets",
    "",
  ].join("\n"));
  const broker = start("mosquitto", MOSQUITTO, ["-c", conf]);
  await waitForPort(ports.tcp, broker, "mosquitto");
  await waitForPort(ports.ws, broker, "mosquitto");

  const toml = path.join(tmp, "packd.toml");
  fs.writeFileSync(toml, [
    "[mqtt]", `url = "mqtt://127.0.0.1:${ports.tcp}"`,
    "[device]", 'id = "kiosk-test"',
    "[bundles]", `dir = "${path.join(tmp, "bundles")}"`,
    "[log]", 'target = "stderr"',
    "",
  ].join("\n"));
  start("packd", PACKD, ["--config", toml]);

  server = await serveKiosk();
  context = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1080, height: 1920 },
    deviceScaleFactor: 1,
    hasTouch: true,
    locale: "en-GB",
    reducedMotion: "reduce", // no smooth scrolling: screenshots start at the top
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(WAIT);
  page.on("console", (m) => { if (m.type() === "error") logs.console.push(m.text()); });
  page.on("pageerror", (e) => logs.console.push(String(e)));
  const url = `http://127.0.0.1:${server.address().port}/?broker=ws://127.0.0.1:${ports.ws}&device=kiosk-test&lang=en`;
  await page.goto(url);
  // packd's retained state, as the page shows it: it proves the WebSockets path and packd are up.
  try {
    await page.locator('#conn[data-state="online"]').waitFor({ timeout: 60_000 });
  } catch (e) {
    throw new Error(`packd never showed online in the page\n--- packd ---\n${logs.packd}\n--- mosquitto ---\n${logs.mosquitto}\n--- console ---\n${logs.console.join("\n")}`);
  }
});

after(async () => {
  try { if (context) await context.close(); } catch (_) { /* closing anyway */ }
  if (server) server.close();
  const packd = children.find((c) => c.spawnargs[0] === PACKD);
  if (packd && packd.exitCode === null) {
    packd.kill("SIGTERM");
    await Promise.race([new Promise((r) => packd.once("exit", r)), new Promise((r) => setTimeout(r, 5000))]);
  }
  killAll();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function chooseBrief(chips) {
  await page.getByTestId("lang-en").isVisible(); // page is live
  await page.locator("#reset").click();
  await page.locator("#result").waitFor({ state: "hidden" });
  for (const name of chips) {
    const chip = page.locator(".chip", { hasText: new RegExp(`^${name}$`) }).first();
    if ((await chip.count()) === 0) { // behind its row's "more" chip
      const row = Object.keys(TERMS.rows).find((r) => TERMS.rows[r].some((x) => x.en === name || x.zh === name));
      await page.getByTestId(`more-${row}`).click();
    }
    await chip.click();
    assert.equal(await chip.getAttribute("aria-pressed"), "true", `chip ${name} selected`);
  }
}

async function sendAndCheck(lang, shot) {
  const before = await page.evaluate(() => window.kiosk.state.seq);
  await page.getByTestId("send").click();
  await page.locator("[data-testid=result]").waitFor({ state: "visible" });
  await page.waitForFunction((n) => window.kiosk.state.lastReply && window.kiosk.state.lastReply.body.id.endsWith(`-${n}`), before + 1);

  const reply = await page.evaluate(() => window.kiosk.state.lastReply.body);
  assert.equal(reply.status, "ok");
  assert.equal(reply.device, "kiosk-test");
  assert.deepEqual(reply.warnings, [], `every chip is a vocabulary term (${lang})`);

  assert.equal(await page.getByTestId("error-banner").isVisible(), false, "no error banner");

  const swatches = await page.$$eval("[data-testid=swatch]", (els) => els.map((e) => ({
    hex: e.dataset.hex, bg: getComputedStyle(e).backgroundColor, w: e.getBoundingClientRect().width })));
  assert.ok(swatches.length >= 3, `at least 3 swatches, got ${swatches.length}`);
  for (const s of swatches) {
    assert.match(s.hex, /^#[0-9A-F]{6}$/, "swatch hex");
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(s.hex.slice(i, i + 2), 16));
    assert.equal(s.bg, `rgb(${r}, ${g}, ${b})`, "swatch is painted in its colour");
    assert.ok(s.w >= 60, "swatches are large");
  }
  const first = reply.palettes[0].colors.map((c) => c.toUpperCase());
  assert.deepEqual(swatches.slice(0, first.length).map((s) => s.hex), first, "swatches are the reply's first palette");

  const scores = await page.$$eval("#styles [data-testid=score]", (els) => els.map((e) => ({
    v: Number(e.dataset.score), text: e.querySelector(".score-num").textContent,
    fill: parseFloat(e.querySelector(".score-fill").style.width) })));
  assert.ok(scores.length >= 1, "style score bars");
  for (const s of scores) {
    assert.ok(Number.isFinite(s.v) && s.v >= 0 && s.v <= 1, `score ${s.v} in [0,1]`);
    assert.ok(Math.abs(Number(s.text) - s.v) < 0.006, "score number shown");
    assert.ok(Math.abs(s.fill - s.v * 100) < 0.2, "bar length is the score");
  }

  const ms = await page.getByTestId("latency-ms").getAttribute("data-ms");
  assert.ok(Number(ms) > 0, `latency figure (${ms} ms)`);
  assert.match(await page.getByTestId("latency-ms").textContent(), /\d.* ms$/);

  for (const key of ["logo", "product", "text"]) {
    assert.equal(await page.getByTestId(`heat-${key}`).count(), 1, `${key} heatmap canvas`);
  }
  const fontFamilies = await page.$$eval(".font-head", (els) => els.map((e) => e.style.fontFamily));
  assert.ok(fontFamilies.length >= 1 && fontFamilies[0].includes(reply.fonts[0].heading), "fonts rendered in their family");

  if (shot) {
    await page.evaluate(() => { document.documentElement.style.scrollBehavior = "auto"; window.scrollTo({ top: 0, behavior: "instant" }); });
    await page.waitForFunction(() => window.scrollY === 0);
    await page.screenshot({ path: path.join(ROOT, "docs", shot), fullPage: true });
  }
  return reply;
}

test("English brief: swatches, style scores, latency", async () => {
  await page.getByTestId("lang-en").click();
  await chooseBrief(["beverage", "young women", "fresh", "summer limited", "morandi"]);
  const reply = await sendAndCheck("en", SHOTS && "kiosk-en.png");
  assert.equal(await page.locator(".style-name").first().textContent(),
    reply.styles[0].style.replace(/_/g, " ").replace(/\b\w/g, (c) => c.toUpperCase()));
});

test("Chinese brief: 饮料 / 清新 / 莫兰迪", async () => {
  await page.getByTestId("lang-zh").click();
  assert.equal(await page.locator("h1").textContent(), "设计你的包装");
  await chooseBrief(["饮料", "年轻女性", "清新", "夏季限定", "莫兰迪"]);
  const reply = await sendAndCheck("zh", SHOTS && "kiosk-zh.png");
  assert.equal(await page.locator(".style-name").first().textContent(), reply.styles[0].name_zh, "style names in Chinese");
});

test("a photo packd cannot decode gives the plain bad-image sentence", async () => {
  await page.getByTestId("lang-en").click();
  await chooseBrief(["tea"]);
  await page.getByTestId("photo-input").setInputFiles({
    name: "broken.jpg", mimeType: "image/jpeg", buffer: Buffer.from("\xff\xd8\xff\xe0 this is not really a JPEG", "binary") });
  await page.locator("#photo-preview").waitFor({ state: "visible" });
  await page.getByTestId("send").click();
  const banner = page.locator('[data-testid=error-banner][data-code="bad_image"]');
  await banner.waitFor({ state: "visible" });
  assert.equal(await banner.textContent(), "That photo could not be read. Please choose another photo.");
  assert.equal(await page.locator("[data-testid=result]").isVisible(), false);
  // the same sentence in Chinese
  await page.getByTestId("lang-zh").click();
  assert.equal(await banner.textContent(), "这张图片无法读取，请换一张图片。");
  assert.deepEqual(logs.console, [], "no script errors in the page");
});

test("on a tablet (1280 × 800 landscape, then 800 × 1280) the page fits and still answers", async () => {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 800, height: 1280 }]) {
    await page.setViewportSize(viewport);
    await page.getByTestId("lang-en").click();
    await chooseBrief(["tea", "calm"]);
    await sendAndCheck("en", SHOTS && viewport.width > viewport.height && "kiosk-tablet.png");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling at ${viewport.width}×${viewport.height} (overflow ${overflow}px)`);
    const send = await page.getByTestId("send").boundingBox();
    assert.ok(send && send.height >= 44, "touch targets stay at least 44 px tall");
  }
  await page.setViewportSize({ width: 1080, height: 1920 });
});

// The example ACL (docs/mosquitto-acl.conf) with password authentication on both listeners: the
// kiosk account may read only packd/v1/replies/kiosk-17/#, so the page, given its username,
// must ask for its replies there (and still gets them). A second broker and packd (device
// orin-17, the ACL's appliance account), a second tab in the same browser.
test("behind the example ACL, a kiosk account gets its replies under its username", async () => {
  const dir = path.join(tmp, "acl");
  fs.mkdirSync(dir);
  const passwd = path.join(dir, "passwd");
  const accounts = [["orin-17", "packd-secret"], ["kiosk-17", "kiosk-secret"]];
  accounts.forEach(([user, password], i) => {
    const made = spawnSync("mosquitto_passwd", [...(i === 0 ? ["-c"] : []), "-b", passwd, user, password], { encoding: "utf8" });
    assert.equal(made.status, 0, `mosquitto_passwd: ${made.stderr}`);
  });
  const acl = { tcp: await freePort(), ws: await freePort() };
  const conf = path.join(dir, "mosquitto.conf");
  fs.writeFileSync(conf, [
    ...(process.getuid && process.getuid() === 0 ? ["user root"] : []),
    "persistence false",
    "allow_anonymous false",
    `password_file ${passwd}`,
    `acl_file ${path.join(ROOT, "docs/mosquitto-acl.conf")}`,
    "set_tcp_nodelay true",
    "log_dest stderr",
    "log_type all",
    `listener ${acl.tcp} 127.0.0.1`,
    `listener ${acl.ws} 127.0.0.1`,
    "protocol websockets",
    "",
  ].join("\n"));
  const broker = start("mosquitto-acl", MOSQUITTO, ["-c", conf]);
  await waitForPort(acl.tcp, broker, "mosquitto-acl");
  await waitForPort(acl.ws, broker, "mosquitto-acl");
  const toml = path.join(dir, "packd.toml");
  fs.writeFileSync(toml, [
    "[mqtt]", `url = "mqtt://127.0.0.1:${acl.tcp}"`, 'username = "orin-17"', 'password = "packd-secret"',
    "[device]", 'id = "orin-17"',
    "[bundles]", `dir = "${path.join(dir, "bundles")}"`,
    "[log]", 'target = "stderr"',
    "",
  ].join("\n"));
  const packd = start("packd-acl", PACKD, ["--config", toml]);

  const tab = await context.newPage();
  try {
    tab.setDefaultTimeout(WAIT);
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    await tab.setViewportSize({ width: 1080, height: 1920 });
    await tab.goto(`http://127.0.0.1:${server.address().port}/?broker=ws://127.0.0.1:${acl.ws}` +
      "&device=orin-17&lang=en&username=kiosk-17&password=kiosk-secret");
    try {
      // The retained state is readable to the kiosk account: packd is up behind the ACL.
      await tab.locator('#conn[data-state="online"]').waitFor({ timeout: 60_000 });
    } catch (e) {
      throw new Error(`packd never showed online behind the ACL\n--- packd ---\n${logs["packd-acl"]}\n--- mosquitto ---\n${logs["mosquitto-acl"]}`);
    }
    const tea = tab.locator(".chip", { hasText: /^tea$/ }).first();
    if ((await tea.count()) === 0) await tab.getByTestId("more-product").click();
    await tea.click();
    await tab.getByTestId("send").click();
    try {
      await tab.waitForFunction(() => window.kiosk.state.lastReply, null, { timeout: WAIT });
    } catch (e) {
      throw new Error(`no reply reached the kiosk behind the ACL\n--- mosquitto ---\n${logs["mosquitto-acl"]}`);
    }
    const reply = await tab.evaluate(() => window.kiosk.state.lastReply.body);
    assert.equal(reply.status, "ok", JSON.stringify(reply));
    assert.equal(reply.device, "orin-17");
    await tab.locator("[data-testid=result]").waitFor({ state: "visible" });
    const { replyTopic, session } = await tab.evaluate(() => ({ replyTopic: window.kiosk.replyTopic, session: window.kiosk.session }));
    assert.equal(replyTopic, `packd/v1/replies/kiosk-17/${session}`, "replies under the account's own subtree");
    assert.deepEqual(errors, [], "no script errors in the page");
  } finally {
    await tab.close();
    packd.kill("SIGTERM");
    await Promise.race([new Promise((r) => packd.once("exit", r)), new Promise((r) => setTimeout(r, 5000))]);
    broker.kill("SIGKILL");
  }
});
