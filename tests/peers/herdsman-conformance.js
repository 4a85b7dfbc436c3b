// Conformance: zigbee-herdsman's zstack adapter (the library inside zigbee2mqtt) against edged-zsim's
// TCP port. Forms the network, permits joining, and waits until every simulated device joined and
// finished its interview. Then restarts herdsman once to exercise the "resume" start-up path.
// Usage: node herdsman-conformance.js <edged-zsim binary> [timeout seconds]
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { Controller, setLogger } = require("zigbee-herdsman");

// herdsman logs every frame at debug; keep warnings and errors only.
const quiet = () => {};
setLogger({ debug: quiet, info: quiet, warning: (m, ns) => console.error(`${ns}: ${m}`), error: (m, ns) => console.error(`${ns}: ${m}`) });

const zsim = process.argv[2];
const timeoutS = Number(process.argv[3] || 120);
const types = ["climate_sensor", "smart_plug", "color_bulb", "motion_sensor", "door_contact"];
const expectedModels = ["edged.climate", "edged.plug", "edged.bulb", "edged.motion", "edged.door"];

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

async function startSim() {
  const child = spawn(zsim, ["--tcp", "0", "--devices", types.join(","), "--report-interval", "2"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/tcp 127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`edged-zsim exited with ${code}`)));
  });
  return { child, port };
}

function makeController(dir, port) {
  return new Controller({
    network: {
      panID: 0x1a62,
      extendedPanID: [0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xde],
      channelList: [11],
      networkKey: [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13],
    },
    serialPort: { path: `tcp://127.0.0.1:${port}`, adapter: "zstack" },
    databasePath: path.join(dir, "database.db"),
    databaseBackupPath: path.join(dir, "database.db.backup"),
    backupPath: path.join(dir, "coordinator_backup.json"),
    adapter: { disableLED: false },
    acceptJoiningDeviceHandler: async () => true,
  });
}

const T0 = Date.now();
const stage = (s) => console.log(`[${Date.now() - T0} ms] ${s}`);

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edged-herdsman-"));
  const { child, port } = await startSim();
  const timer = setTimeout(() => {
    child.kill();
    fail(`timed out after ${timeoutS}s`);
  }, timeoutS * 1000);
  try {
    const t0 = Date.now();
    let controller = makeController(dir, port);
    const interviewed = new Map();
    const joined = new Set();
    let reports = 0;
    controller.on("deviceJoined", (e) => joined.add(e.device.ieeeAddr));
    controller.on("deviceInterview", (e) => {
      if (e.status === "failed") console.error(`interview failed: ${e.device.ieeeAddr}`);
      if (e.status === "successful") interviewed.set(e.device.ieeeAddr, e.device);
    });
    controller.on("message", (m) => {
      if (m.type === "attributeReport") reports++;
    });
    const startResult = await controller.start();
    console.log(`herdsman started (${startResult}) in ${Date.now() - t0} ms`);
    await controller.permitJoin(254);
    while (interviewed.size < types.length) await new Promise((r) => setTimeout(r, 200));
    console.log(`all ${types.length} devices joined and interviewed in ${Date.now() - t0} ms`);
    const models = [...interviewed.values()].map((d) => d.modelID).sort();
    if (JSON.stringify(models) !== JSON.stringify([...expectedModels].sort())) fail(`models ${models}`);
    for (const d of interviewed.values()) {
      if (!d.manufacturerName || d.interviewState !== "SUCCESSFUL") fail(`device ${d.ieeeAddr} incomplete`);
      if (d.endpoints.length !== 1 || d.endpoints[0].inputClusters.length < 4) fail(`endpoints of ${d.ieeeAddr}`);
    }
    // A command round trip: switch the plug on through the adapter.
    const plug = [...interviewed.values()].find((d) => d.modelID === "edged.plug");
    stage("switching the plug");
    await plug.getEndpoint(1).command("genOnOff", "on", {});
    stage("plug switched");
    const read = await plug.getEndpoint(1).read("genOnOff", ["onOff"]);
    if (read.onOff !== 1) fail(`plug onOff read back ${JSON.stringify(read)}`);
    const t1 = Date.now();
    while (reports === 0 && Date.now() - t1 < 10000) await new Promise((r) => setTimeout(r, 100));
    if (reports === 0) fail("no attribute report arrived");
    stage("stopping");
    await controller.stop();
    stage("restarting");

    // Restart: the adapter is configured now, so herdsman must take the resume path.
    controller = makeController(dir, port);
    const second = await controller.start();
    if (second !== "resumed") fail(`second start was '${second}', expected 'resumed'`);
    const devices = controller.getDevices().filter((d) => d.type !== "Coordinator");
    if (devices.length !== types.length) fail(`database has ${devices.length} devices after restart`);
    stage("stopping again");
    await controller.stop();
    console.log(`PASS: joined=${joined.size} interviewed=${interviewed.size} reports=${reports} resume=ok`);
    process.exitCode = 0;
  } finally {
    clearTimeout(timer);
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// herdsman keeps timers alive after stop(); exit explicitly once done.
main().then(() => process.exit(0)).catch((e) => fail(e.stack || String(e)));
