#!/usr/bin/env node
// Compile every contracts/src/**/*.sol with solc-js (standard JSON) into
// contracts/artifacts/<ContractName>.json, and record what was compiled in
// contracts/artifacts/sources.sha256. Nothing is compiled when that hash already matches.
//
//   node contracts/build.js            build if stale
//   node contracts/build.js --force    build even if the hash matches
//   node contracts/build.js --check    exit 1 if the artifacts are stale, build nothing
//
// The hash (keep in sync with optinode/l1/artifacts.py: sources_hash) is the sha256 of
//   "optinode-contracts-v1\n"
//   "solc <version pinned in package.json>\n"
//   "build.js <sha256 hex of this file>\n"
//   then for every source, sorted by the UTF-8 bytes of its path relative to contracts/:
//   "<path>\n<sha256 hex of its bytes>\n"
// It covers the compiler settings too, because they live in this file.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const CONTRACTS_DIR = __dirname;
const ROOT = path.dirname(CONTRACTS_DIR);
const SRC_DIR = path.join(CONTRACTS_DIR, "src");
const OUT_DIR = path.join(CONTRACTS_DIR, "artifacts");
const HASH_FILE = path.join(OUT_DIR, "sources.sha256");

// EIP-170 (deployed code) and EIP-3860 (init code): what runs on the devnet must deploy on a public chain.
const MAX_CODE_SIZE = 24576;
const MAX_INITCODE_SIZE = 2 * MAX_CODE_SIZE;

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  // Legacy pipeline (no viaIR): ~9x faster to compile with solc-js.
  outputSelection: {
    "*": {
      "*": [
        "abi",
        "evm.bytecode.object",
        "evm.bytecode.linkReferences",
        "evm.deployedBytecode.object",
        "evm.deployedBytecode.linkReferences",
      ],
    },
  },
};

function sha256hex(data) {
  return crypto.createHash("sha256").update(data).digest("hex");
}

function pinnedSolcVersion() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const v = (pkg.devDependencies || {}).solc || (pkg.dependencies || {}).solc;
  if (!/^\d+\.\d+\.\d+$/.test(v || "")) {
    throw new Error(`package.json must pin solc to an exact version, found ${JSON.stringify(v)}`);
  }
  return v;
}

function listSources(dir = SRC_DIR) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(full));
    else if (entry.isFile() && entry.name.endsWith(".sol")) out.push(full);
  }
  return out;
}

/** [{rel, full}] sorted by the UTF-8 bytes of rel (a POSIX path relative to contracts/). */
function sortedSources() {
  return listSources()
    .map((full) => ({ full, rel: path.relative(CONTRACTS_DIR, full).split(path.sep).join("/") }))
    .sort((a, b) => Buffer.compare(Buffer.from(a.rel, "utf8"), Buffer.from(b.rel, "utf8")));
}

function sourcesHash(sources, solcVersion) {
  const h = crypto.createHash("sha256");
  h.update("optinode-contracts-v1\n");
  h.update(`solc ${solcVersion}\n`);
  h.update(`build.js ${sha256hex(fs.readFileSync(__filename))}\n`);
  for (const { rel, full } of sources) {
    h.update(`${rel}\n${sha256hex(fs.readFileSync(full))}\n`);
  }
  return h.digest("hex");
}

function readRecordedHash() {
  try {
    return fs.readFileSync(HASH_FILE, "utf8").trim();
  } catch {
    return null;
  }
}

function compile(sources, solcVersion) {
  let solc;
  try {
    solc = require("solc");
  } catch (e) {
    throw new Error("solc-js is not installed: run `npm ci` at the repository root (make does it for you)");
  }
  const installed = require("solc/package.json").version;
  if (installed !== solcVersion) {
    throw new Error(`installed solc ${installed} != pinned ${solcVersion}: run \`npm ci\``);
  }
  const input = { language: "Solidity", sources: {}, settings: SETTINGS };
  for (const { rel, full } of sources) input.sources[rel] = { content: fs.readFileSync(full, "utf8") };

  const findImports = (p) => ({
    error: `import ${p} not found: every source must live under contracts/src (imports are relative)`,
  });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const diagnostics = output.errors || [];
  for (const d of diagnostics) {
    if (d.severity !== "error") process.stderr.write(d.formattedMessage || d.message);
  }
  const errors = diagnostics.filter((d) => d.severity === "error");
  if (errors.length) {
    for (const d of errors) process.stderr.write(d.formattedMessage || d.message);
    throw new Error(`solc reported ${errors.length} error(s)`);
  }
  return { output, longVersion: solc.version() };
}

function toArtifacts(output, longVersion) {
  const artifacts = new Map();
  const problems = [];
  for (const [sourceName, contracts] of Object.entries(output.contracts || {})) {
    for (const [contractName, c] of Object.entries(contracts)) {
      if (artifacts.has(contractName)) {
        problems.push(
          `contract name ${contractName} is defined in both ${artifacts.get(contractName).sourceName} ` +
            `and ${sourceName}: artifacts are keyed by name, rename one`,
        );
        continue;
      }
      const bytecode = c.evm.bytecode.object;
      const deployed = c.evm.deployedBytecode.object;
      if (deployed.length / 2 > MAX_CODE_SIZE) {
        problems.push(`${contractName}: deployed code is ${deployed.length / 2} bytes > EIP-170 limit ${MAX_CODE_SIZE}`);
      }
      if (bytecode.length / 2 > MAX_INITCODE_SIZE) {
        problems.push(`${contractName}: init code is ${bytecode.length / 2} bytes > EIP-3860 limit ${MAX_INITCODE_SIZE}`);
      }
      artifacts.set(contractName, {
        contractName,
        sourceName,
        compiler: `solc ${longVersion}`,
        abi: c.abi,
        bytecode: "0x" + bytecode,
        deployedBytecode: "0x" + deployed,
        linkReferences: c.evm.bytecode.linkReferences || {},
        deployedLinkReferences: c.evm.deployedBytecode.linkReferences || {},
      });
    }
  }
  if (problems.length) throw new Error(problems.join("\n"));
  return artifacts;
}

function writeArtifacts(artifacts, hash) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  // Remove the hash first so an interrupted build is seen as stale and redone.
  fs.rmSync(HASH_FILE, { force: true });
  for (const f of fs.readdirSync(OUT_DIR)) {
    if (f.endsWith(".json")) fs.rmSync(path.join(OUT_DIR, f));
  }
  const names = [...artifacts.keys()].sort();
  for (const name of names) {
    fs.writeFileSync(path.join(OUT_DIR, `${name}.json`), JSON.stringify(artifacts.get(name), null, 2) + "\n");
  }
  fs.writeFileSync(HASH_FILE, hash + "\n");
  return names;
}

function main(argv) {
  const force = argv.includes("--force");
  const check = argv.includes("--check");
  const solcVersion = pinnedSolcVersion();
  const sources = sortedSources();
  const hash = sourcesHash(sources, solcVersion);
  const recorded = readRecordedHash();

  if (check) {
    if (recorded === hash) {
      console.log(`contracts: artifacts up to date (${hash.slice(0, 12)})`);
      return 0;
    }
    console.error(`contracts: artifacts are stale (recorded ${recorded}, sources ${hash}): run \`node contracts/build.js\``);
    return 1;
  }
  if (!force && recorded === hash) {
    console.log(`contracts: up to date (${sources.length} sources, ${hash.slice(0, 12)})`);
    return 0;
  }
  const t0 = Date.now();
  const { output, longVersion } = compile(sources, solcVersion);
  const names = writeArtifacts(toArtifacts(output, longVersion), hash);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`contracts: compiled ${sources.length} sources -> ${names.length} artifacts in ${secs}s (solc ${longVersion})`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(`contracts: build failed: ${e.message}`);
  process.exitCode = 1;
}
