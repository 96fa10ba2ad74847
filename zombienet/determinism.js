// Compares the verdict lines of every node in the network: for each candidate id, every
// node that validated it must have logged the same digest, every time. Returns how many
// candidates every node validated (so a test can require enough overlap), and throws on the
// first disagreement. Reads the log files the native provider writes (<tmpDir>/<node>.log).
const fs = require("fs");
const path = require("path");

const VERDICT = /verdict candidate=(\S+) verdict=(\S+) digest=([0-9a-f]{64})/;

async function run(_nodeName, networkInfo) {
  const names = Object.keys(networkInfo.nodesByName);
  // candidate id -> node name -> digest
  const seen = new Map();
  for (const name of names) {
    const log = fs.readFileSync(path.join(networkInfo.tmpDir, `${name}.log`), "utf8");
    for (const line of log.split("\n")) {
      const m = VERDICT.exec(line);
      if (!m) continue;
      const [, id, , digest] = m;
      if (!seen.has(id)) seen.set(id, new Map());
      const byNode = seen.get(id);
      for (const [other, theirs] of byNode) {
        if (theirs !== digest) {
          throw new Error(`${id}: ${name} logged ${digest}, ${other} logged ${theirs}`);
        }
      }
      byNode.set(name, digest);
    }
  }
  let everyNode = 0;
  for (const byNode of seen.values()) {
    if (byNode.size === names.length) everyNode += 1;
  }
  console.log(`determinism: ${seen.size} candidates, ${everyNode} validated by all ${names.length} nodes, no disagreement`);
  return everyNode;
}

module.exports = { run };
