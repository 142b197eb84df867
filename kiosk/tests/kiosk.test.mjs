// Browser test of the kiosk page, end to end: Debian's headless Chromium (driven by
// playwright-core) → mosquitto's WebSockets listener → a real packd → reply rendered.
//
//   (cd kiosk/tests && npm ci) && node --test kiosk/tests/kiosk.test.mjs
//   KIOSK_SCREENSHOTS=1 node --test kiosk/tests/kiosk.test.mjs   # also rewrites docs/kiosk-*.png:
//     viewport shots of a reply, 1080×1920 (two screens) in en and zh, 1280×800 tablet in en and zh
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
  ".json": "application/json; charset=utf-8", ".png": "image/png", ".md": "text/markdown; charset=utf-8",
  ".woff2": "font/woff2" };

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
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // Chromium's test camera (a moving pattern) and an automatic yes to the camera prompt
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
    viewport: { width: 1080, height: 1920 },
    deviceScaleFactor: 1,
    hasTouch: true,
    locale: "en-GB",
    reducedMotion: "reduce", // no smooth scrolling: screenshots start at the top
  });
  await context.grantPermissions(["camera"]);
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(WAIT);
  page.on("console", (m) => { if (m.type() === "error") logs.console.push(m.text()); });
  page.on("pageerror", (e) => logs.console.push(String(e)));
  // http://127.0.0.1 is a secure context, as localhost is: the camera button is offered.
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
  // the appliance's mock-up of the top suggestion, decoded and shown, with its layout template
  assert.equal(typeof reply.preview_png, "string", "the kiosk asks for a preview");
  await page.waitForFunction(() => {
    const img = document.querySelector("[data-testid=mockup]");
    return img && img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0;
  });
  const [mockW, mockH] = await page.getByTestId("mockup").evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(mockW >= 640 && mockH >= 640, `a panel at a useful size (${mockW}×${mockH})`);
  assert.equal(typeof reply.layout.template, "string", "the reply names its layout template");
  assert.ok((await page.getByTestId("mockup-caption").textContent()).includes(reply.layout.template));
  const fontFamilies = await page.$$eval(".font-head", (els) => els.map((e) => e.style.fontFamily));
  assert.ok(fontFamilies.length >= 1 && fontFamilies[0].includes(reply.fonts[0].heading), "fonts rendered in their family");
  const faces = await fontFaces(page);
  assert.equal(faces.length, reply.fonts.length, "one card per font pairing");
  for (const f of faces) {
    // every family of the catalogue ships with the page: no stand-in marker on any card
    assert.deepEqual(f.missing, [], `bundled faces for ${f.heading} / ${f.headingCjk}`);
    assert.equal(f.marker, false, `no stand-in marker for ${f.heading} / ${f.headingCjk}`);
    assert.ok(f.headingLoaded, `${f.heading} is drawn in its own face`);
  }

  if (shot) {
    await screenshot(page, shot, "#result");
    // on the 1080×1920 kiosk a second screen: style scores, font pairings, layout heatmaps
    if (page.viewportSize().height > page.viewportSize().width && page.viewportSize().width >= 1080) {
      await screenshot(page, shot.replace(/\.png$/, "-fonts.png"), ".grid2");
    }
  }
  return reply;
}

// The font cards once their bundled faces have loaded: for each, the families shown in a stand-in
// and whether the heading's Latin and CJK faces are loaded FontFaces of the page (kiosk/fonts).
async function fontFaces(p) {
  await p.waitForFunction(() => [...document.querySelectorAll("[data-testid=font-card]")].every((c) => c.dataset.fontsLoaded));
  return p.$$eval("[data-testid=font-card]", (cards) => cards.map((c) => {
    const loaded = (family, text) => !!family && [...document.fonts].some((f) => f.family.replace(/"/g, "") === family && f.status === "loaded")
      && document.fonts.check(`700 40px "${family}"`, text);
    return {
      heading: c.dataset.heading, headingCjk: c.dataset.headingCjk,
      missing: c.dataset.missing ? c.dataset.missing.split(",") : [],
      marker: !!c.querySelector(".font-missing"),
      headingLoaded: loaded(c.dataset.heading, "Fresh"),
      cjkLoaded: loaded(c.dataset.headingCjk, "清爽好味道"),
      fontsLoaded: c.dataset.fontsLoaded,
    };
  }));
}

// A 1080×1920 (or tablet) viewport screenshot of the reply as the page shows it: the part
// `selector` scrolled to the top of the screen, every face loaded.
async function screenshot(p, name, selector) {
  await p.evaluate(async (sel) => {
    await document.fonts.ready;
    document.querySelector(sel).scrollIntoView({ block: "start", behavior: "instant" });
  }, selector);
  await p.screenshot({ path: path.join(ROOT, "docs", name), animations: "disabled" });
}

test("English brief: swatches, style scores, latency", async () => {
  await page.getByTestId("lang-en").click();
  await chooseBrief(["beverage", "young women", "fresh", "summer limited", "morandi"]);
  // the whole brief fits the first 1080×1920 screen: "Design it" is on it without scrolling
  await page.evaluate(() => window.scrollTo({ top: 0, behavior: "instant" }));
  const send = await page.evaluate(() => document.getElementById("send").getBoundingClientRect().bottom);
  assert.ok(send <= 1920, `the send button is on the first screen (bottom at ${send} px)`);
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

// The rows of "What the appliance understood" as the page shows them.
function understoodRows(p) {
  return p.$$eval("[data-testid=understood-row]", (rows) => rows.map((r) => ({
    field: r.dataset.field, via: r.dataset.via, guess: r.classList.contains("guess"),
    fieldLabel: r.querySelector(".u-field").textContent,
    text: r.querySelector("[data-testid=understood-text]").textContent,
    terms: [...r.querySelectorAll("[data-testid=understood-term]")].map((x) => ({
      id: x.dataset.id, group: x.querySelector(".u-group").textContent, label: x.lastChild.textContent })),
    how: r.querySelector("[data-testid=understood-via]").textContent,
  })));
}

// The page offers chips only; a value typed the way people type (茶饮 for tea, 国潮 as a mood,
// though the vocabulary has it as a keyword) goes into the page's selection as it is, which the
// page sends unchanged (a value that is no chip's id is sent as written), as a client with a text
// field would send it. packd reads both by synonym; the page says so in English and in Chinese.
test("typed 茶饮 / 国潮: what the appliance understood, in English and Chinese", async () => {
  await page.getByTestId("lang-en").click();
  await chooseBrief(["tea"]);
  await page.evaluate(() => {
    const sel = window.kiosk.state.selected;
    sel.product.clear(); sel.product.add("茶饮");
    sel.mood.add("国潮");
  });
  const reply = await sendAndCheck("en"); // no warnings: both values were understood
  const byField = Object.fromEntries(reply.understood.map((u) => [u.field, u]));
  assert.deepEqual(byField.product, { field: "product", text: "茶饮", as: ["product:tea"], via: "synonym" });
  assert.deepEqual(byField.mood, { field: "mood", text: "国潮", as: ["keyword:guochao"], via: "synonym" });

  await page.getByTestId("understood").waitFor({ state: "visible" });
  assert.equal(await page.locator("#understood .u-title").textContent(), "What the appliance understood");
  const en = await understoodRows(page);
  assert.equal(en.length, reply.understood.length, "one row per understood entry");
  assert.deepEqual(en.find((r) => r.field === "product"), { field: "product", via: "synonym", guess: false,
    fieldLabel: "Product", text: "茶饮", terms: [{ id: "product:tea", group: "product", label: "tea" }], how: "synonym" });
  assert.deepEqual(en.find((r) => r.field === "mood"), { field: "mood", via: "synonym", guess: false,
    fieldLabel: "Mood", text: "国潮", terms: [{ id: "keyword:guochao", group: "keyword", label: "guochao" }], how: "synonym" });

  await page.getByTestId("lang-zh").click();
  assert.equal(await page.locator("#understood .u-title").textContent(), "设备理解为");
  const zh = await understoodRows(page);
  assert.deepEqual(zh.find((r) => r.field === "product"), { field: "product", via: "synonym", guess: false,
    fieldLabel: "产品", text: "茶饮", terms: [{ id: "product:tea", group: "产品", label: "茶" }], how: "同义词" });
  assert.deepEqual(zh.find((r) => r.field === "mood"), { field: "mood", via: "synonym", guess: false,
    fieldLabel: "风格感受", text: "国潮", terms: [{ id: "keyword:guochao", group: "关键词", label: "国潮" }], how: "同义词" });
  assert.equal(await page.locator("#warnings").isVisible(), false, "nothing left out");
  await page.getByTestId("lang-en").click();
});

// Encoder readings (guesses by meaning, with their similarity) and `contains` readings, from a
// stand-in appliance (an mqtt.js client in a second tab answering device "guesser"): they are
// drawn apart from exact and synonym readings, a term the page's vocabulary does not know is
// shown by its id's name, and reply text is never taken as HTML.
test("encoder and contains readings: by meaning with a percentage, drawn as guesses, text not HTML", async () => {
  const understood = [
    { field: "product", text: "能量饮料", as: ["product:moon_cheese", "product:beverage"], via: "encoder", similarity: 0.812 },
    { field: "keywords", text: "<img src=x onerror=\"window.pwned=1\">国潮风", as: ["keyword:guochao"], via: "contains" },
    { field: "audience", text: "young women", as: ["audience:young_women"], via: "exact" },
  ];
  const tab = await context.newPage();
  try {
    tab.setDefaultTimeout(WAIT);
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    await tab.goto(`http://127.0.0.1:${server.address().port}/?broker=ws://127.0.0.1:${ports.ws}&device=guesser&lang=en`);
    await tab.waitForFunction(() => window.kiosk && window.kiosk.state.connected);
    await tab.evaluate(([ws, u]) => new Promise((resolve, reject) => {
      const c = window.mqtt.connect(ws, { protocolVersion: 5, clientId: "stand-in-guesser", reconnectPeriod: 0 });
      c.on("error", reject);
      c.on("connect", () => c.subscribe("packd/v1/devices/guesser/briefs", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      c.on("message", (topic, payload, packet) => {
        const brief = JSON.parse(new TextDecoder().decode(payload));
        c.publish(packet.properties.responseTopic, JSON.stringify({ v: 1, id: brief.id, status: "ok", understood: u,
          warnings: ["unknown keyword 'sparkly' ignored"], styles: [], palettes: [], fonts: [] }),
          { qos: 1, properties: { correlationData: packet.properties.correlationData, contentType: "application/json" } });
      });
    }), [`ws://127.0.0.1:${ports.ws}`, understood]);
    const tea = tab.locator(".chip", { hasText: /^tea$/ }).first();
    if ((await tea.count()) === 0) await tab.getByTestId("more-product").click();
    await tea.click();
    await tab.getByTestId("send").click();
    await tab.getByTestId("understood").waitFor({ state: "visible" });

    const en = await understoodRows(tab);
    assert.deepEqual(en.map((r) => [r.field, r.via, r.guess]),
      [["product", "encoder", true], ["keywords", "contains", false], ["audience", "exact", false]], "rows in reply order");
    assert.equal(en[0].how, "by meaning, 81 %");
    assert.deepEqual(en[0].terms, [{ id: "product:moon_cheese", group: "product", label: "moon cheese" },
      { id: "product:beverage", group: "product", label: "beverage" }]);
    assert.equal(en[0].fieldLabel, "Product");
    assert.equal(en[1].text, understood[1].text, "reply text shown literally");
    assert.equal(en[1].fieldLabel, "Keywords");
    assert.equal(en[1].how, "contains");
    assert.equal(en[2].how, "exact");
    assert.equal(await tab.locator("#understood img").count(), 0, "no element made from reply text");
    assert.equal(await tab.evaluate(() => window.pwned), undefined, "no script from reply text");
    // a guess looks different: its term pills are dashed, the others solid
    const borders = await tab.$$eval("[data-testid=understood-row] .u-term", (xs) => xs.map((x) => getComputedStyle(x).borderStyle));
    assert.deepEqual(borders, ["dashed", "dashed", "solid", "solid"]);
    assert.equal(await tab.locator("#warnings").isVisible(), true, "warnings stay next to it");

    await tab.getByTestId("lang-zh").click();
    const zh = await understoodRows(tab);
    assert.equal(zh[0].how, "语义匹配 81%");
    assert.equal(zh[0].fieldLabel, "产品");
    assert.deepEqual(zh[0].terms, [{ id: "product:moon_cheese", group: "产品", label: "moon cheese" },
      { id: "product:beverage", group: "产品", label: "饮料" }], "an unknown term: its group in Chinese, its name");
    assert.deepEqual(zh[1].terms, [{ id: "keyword:guochao", group: "关键词", label: "国潮" }]);
    assert.equal(zh[1].how, "包含词语");
    assert.equal(zh[2].how, "精确匹配");
    assert.deepEqual(zh[2].terms, [{ id: "audience:young_women", group: "人群", label: "年轻女性" }]);
    assert.deepEqual(errors, [], "no script errors in the page");
  } finally {
    await tab.close();
  }
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

test("font pairings are drawn in their real faces, Latin and CJK (bundled in kiosk/fonts)", async () => {
  // Chromium here has no font of the catalogue installed: whatever renders in one comes from
  // kiosk/fonts/fonts.css. Both languages, so both kinds of sample text are drawn.
  for (const [lang, chips] of [["zh", ["饮料", "年轻女性", "清新", "莫兰迪"]], ["en", ["tea", "calm"]]]) {
    await page.getByTestId(`lang-${lang}`).click();
    await chooseBrief(chips);
    const reply = await sendAndCheck(lang);
    const faces = await fontFaces(page);
    const latin = faces.filter((f) => f.headingLoaded && !f.marker);
    const cjk = faces.filter((f) => f.cjkLoaded && !f.missing.includes(f.headingCjk));
    assert.ok(latin.length >= 1, `a Latin heading face is real, no stand-in marker (${lang}): ${JSON.stringify(faces)}`);
    assert.ok(cjk.length >= 1, `a CJK heading face is real (${lang}): ${JSON.stringify(faces)}`);
    // the face really is used: the heading measures differently in its face than in the fallback
    const differs = await page.evaluate((family) => {
      const g = document.createElement("canvas").getContext("2d");
      g.font = `700 40px "${family}", serif`; const a = g.measureText("Fresh & Bright 清爽好味道").width;
      g.font = "700 40px serif"; const b = g.measureText("Fresh & Bright 清爽好味道").width;
      return a !== b;
    }, reply.fonts[0].heading);
    assert.ok(differs, `${reply.fonts[0].heading} changes the text's width`);
  }
});

test("a photo from the camera (Chromium's fake camera) is sent and answered", async () => {
  await page.getByTestId("lang-en").click();
  await chooseBrief(["tea"]);
  const camera = page.locator("#camera-btn");
  assert.equal(await camera.isVisible(), true, "the camera is offered on a secure origin (127.0.0.1)");
  await camera.click();
  await page.locator("#camera").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.getElementById("camera-video").videoWidth > 0);
  await page.locator("#camera-shoot").click();
  await page.locator("#camera").waitFor({ state: "hidden" });
  await page.locator("#photo-preview").waitFor({ state: "visible" });
  const jpeg = await page.evaluate(() => window.kiosk.state.photo.base64);
  assert.match(jpeg, /^\/9j\//, "the frame is sent as a JPEG");
  assert.ok(jpeg.length > 1000, "a real frame");
  const reply = await sendAndCheck("en");
  assert.equal(reply.status, "ok");
  assert.equal(await page.locator("#photo-preview").isVisible(), true, "the photo stays for the next brief");
});

test("a valid photo file is sent unchanged and answered", async () => {
  await page.getByTestId("lang-en").click();
  await chooseBrief(["cosmetics", "elegant"]);
  const png = await page.evaluate(() => {
    const c = document.createElement("canvas");
    c.width = 320; c.height = 240;
    const g = c.getContext("2d");
    const gr = g.createLinearGradient(0, 0, 320, 240);
    gr.addColorStop(0, "#8FB9B0"); gr.addColorStop(1, "#F2C14E");
    g.fillStyle = gr; g.fillRect(0, 0, 320, 240);
    g.fillStyle = "#3E6D74"; g.fillRect(120, 60, 80, 120);
    return c.toDataURL("image/png").split(",")[1];
  });
  await page.getByTestId("photo-input").setInputFiles({ name: "shelf.png", mimeType: "image/png", buffer: Buffer.from(png, "base64") });
  await page.locator("#photo-preview").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => window.kiosk.state.photo.base64), png, "a small photo is sent as it is");
  const reply = await sendAndCheck("en");
  assert.equal(reply.status, "ok");
});

// Every error code of the contract (and no answer at all), as the page words them. A second tab
// sends its briefs to device "nobody", answered by a stand-in appliance (an mqtt.js client in that
// tab) that replies to the brief's Response Topic with its Correlation Data, as packd does, with
// the error each case sets.
const ERRORS = [
  [{ error: { code: "overloaded", message: "the work queue is full (256 briefs); retry in 2500 ms" }, retry_after_ms: 2500 },
    "The designer is busy right now. Please try again in 3 seconds.", "设计助手正忙，请 3 秒后再试。"],
  [{ error: { code: "overloaded", message: "the work queue is full" }, retry_after_ms: 800 },
    "The designer is busy right now. Please try again in 1 second.", "设计助手正忙，请 1 秒后再试。"],
  [{ error: { code: "too_large", message: "image over 4 MiB" } },
    "That photo is too large. Please choose a smaller photo.", "这张图片太大了，请换一张小一些的图片。"],
  [{ error: { code: "expired", message: "deadline passed in the queue" } },
    "The designer took too long to start on this brief. Please try again.", "设计助手未能及时开始处理，请再试一次。"],
  [{ error: { code: "no_model", message: "no bundle is active" } },
    "The designer has no design model loaded. Please ask a member of staff.", "设计助手尚未加载设计模型，请联系店员。"],
  [{ error: { code: "internal", message: "worker panicked" } },
    "Something went wrong in the designer. Please try again.", "设计助手出了点问题，请再试一次。"],
  [{ error: { code: "bad_request", message: "field 'top_k' must be 1-10", field: "top_k" } },
    "The designer could not accept this brief. Please change it and try again.", "设计助手无法接受这个需求，请修改后再试。"],
  [{ error: { code: "unsupported_version", message: "v 1 is not spoken here" } },
    "This page does not match the designer's version. Please ask a member of staff.", "本页面与设计助手的版本不匹配，请联系店员。"],
  [{ error: { code: "bad_image", message: "image cannot be decoded" } },
    "That photo could not be read. Please choose another photo.", "这张图片无法读取，请换一张图片。"],
  [null, // no reply: the page's own timeout (timeout=2 s here)
    "The designer did not answer. Please check that it is switched on, then try again.", "设计助手没有回应，请确认设备已开启后再试。"],
];

test("every error code, and no answer, is one plain sentence in English and Chinese", async () => {
  const tab = await context.newPage();
  try {
    tab.setDefaultTimeout(WAIT);
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    await tab.setViewportSize({ width: 1080, height: 1920 });
    await tab.goto(`http://127.0.0.1:${server.address().port}/?broker=ws://127.0.0.1:${ports.ws}&device=nobody&lang=en&timeout=2`);
    await tab.waitForFunction(() => window.kiosk && window.kiosk.state.connected);
    await tab.evaluate((ws) => new Promise((resolve, reject) => {
      const c = window.mqtt.connect(ws, { protocolVersion: 5, clientId: "stand-in-appliance", reconnectPeriod: 0 });
      window.standIn = { briefs: 0 };
      c.on("error", reject);
      c.on("connect", () => c.subscribe("packd/v1/devices/nobody/briefs", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      c.on("message", (topic, payload, packet) => {
        const brief = JSON.parse(new TextDecoder().decode(payload));
        window.standIn.briefs++;
        const reply = window.standIn.reply;
        if (!reply) return;
        c.publish(packet.properties.responseTopic, JSON.stringify({ v: 1, id: brief.id, status: "error", ...reply }),
          { qos: 1, properties: { correlationData: packet.properties.correlationData, contentType: "application/json" } });
      });
    }), `ws://127.0.0.1:${ports.ws}`);
    const tea = tab.locator(".chip", { hasText: /^tea$/ }).first();
    if ((await tea.count()) === 0) await tab.getByTestId("more-product").click();
    await tea.click();

    for (const [reply, en, zh] of ERRORS) {
      const code = reply ? reply.error.code : "timeout";
      await tab.getByTestId("lang-en").click();
      const seen = await tab.evaluate((r) => { window.standIn.reply = r; return window.standIn.briefs; }, reply);
      await tab.getByTestId("send").click();
      await tab.waitForFunction((n) => window.standIn.briefs > n, seen);
      const banner = tab.locator(`[data-testid=error-banner][data-code="${code}"]`);
      await banner.waitFor({ state: "visible" });
      assert.equal(await banner.getByTestId("error-text").textContent(), en, `${code} in English`);
      assert.equal(await tab.locator("[data-testid=result]").isVisible(), false, `${code}: no result shown`);
      assert.equal(await tab.getByTestId("send").isEnabled(), true, `${code}: the brief can be sent again`);
      await tab.getByTestId("lang-zh").click();
      assert.equal(await banner.getByTestId("error-text").textContent(), zh, `${code} in Chinese`);
      const detail = banner.getByTestId("error-detail");
      if (code === "bad_request") {
        // packd's own (English) words stay available to staff, on a smaller line, not in the sentence
        assert.equal(await detail.textContent(), reply.error.message);
        assert.doesNotMatch(zh, /top_k/);
      } else {
        assert.equal(await detail.count(), 0, `${code}: one sentence only`);
      }
    }
    assert.deepEqual(errors, [], "no script errors in the page");
  } finally {
    await tab.close();
  }
});

// Every button, chip, input and the file picker's label, with a brand colour and a photo added
// (their ✕ buttons shown) and with the camera view open, at the kiosk size and two tablet sizes.
test("every touch target is at least 56 px, on the kiosk and on tablets", async () => {
  const small = () => page.evaluate(() => {
    const out = [];
    for (const e of document.querySelectorAll("button, input, select, textarea, label, a[href], [role=button], .chip")) {
      if (e.type === "file") continue; // an invisible overlay filling its label, measured as the label
      const r = e.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue; // not shown
      if (r.width < 56 || r.height < 56) out.push(`${e.id || e.className || e.tagName} "${e.textContent.trim().slice(0, 12)}" ${r.width.toFixed(0)}×${r.height.toFixed(0)}`);
    }
    return out;
  });
  const counted = () => page.evaluate(() => document.querySelectorAll(".bc-del, .clear-photo, .chip, .lang-btn").length);
  for (const viewport of [{ width: 1080, height: 1920 }, { width: 1280, height: 800 }, { width: 800, height: 1280 }]) {
    await page.setViewportSize(viewport);
    for (const lang of ["en", "zh"]) {
      await page.getByTestId(`lang-${lang}`).click();
      await chooseBrief([]);
      await page.getByTestId("add-color").click();
      await page.getByTestId("add-color").click();
      await page.getByTestId("photo-input").setInputFiles({ name: "x.jpg", mimeType: "image/jpeg", buffer: Buffer.from("not a photo") });
      await page.locator("#photo-preview").waitFor({ state: "visible" });
      assert.ok((await counted()) > 20, "the targets are there to measure");
      assert.deepEqual(await small(), [], `targets under 56 px at ${viewport.width}×${viewport.height} (${lang})`);
      await page.locator("#camera-btn").click();
      await page.locator("#camera").waitFor({ state: "visible" });
      assert.deepEqual(await small(), [], `camera view targets under 56 px at ${viewport.width}×${viewport.height}`);
      const onScreen = await page.evaluate(() => [...document.querySelectorAll(".camera-actions button")]
        .every((b) => { const r = b.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }));
      assert.ok(onScreen, `the camera's buttons are on screen at ${viewport.width}×${viewport.height}`);
      await page.locator("#camera-cancel").click();
      await page.locator("#camera").waitFor({ state: "hidden" });
    }
  }
  await page.locator("#reset").click();
  await page.setViewportSize({ width: 1080, height: 1920 });
});

test("on a tablet (1280 × 800 landscape, then 800 × 1280) the page fits and still answers", async () => {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 800, height: 1280 }]) {
    await page.setViewportSize(viewport);
    await page.getByTestId("lang-en").click();
    await chooseBrief(["tea", "calm"]);
    await sendAndCheck("en", SHOTS && viewport.width > viewport.height && "kiosk-tablet.png");
    if (viewport.width > viewport.height) {
      await page.getByTestId("lang-zh").click();
      await chooseBrief(["茶", "宁静"]);
      await sendAndCheck("zh", SHOTS && "kiosk-tablet-zh.png");
      await page.getByTestId("lang-en").click();
    }
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
