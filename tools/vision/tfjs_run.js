#!/usr/bin/env node
// Runs a TF.js graph model with @tensorflow/tfjs (pure-JavaScript CPU backend) on one input
// and prints its outputs as JSON: the reference the converted ONNX models are checked against.
//   node tfjs_run.js MODEL.json INPUT.f32 H,W,C OUT.json   OUT.json: {"outputs": {"Identity:0": [...]}}
// (a file, since tfjs-core prints a banner on stdout).
// INPUT.f32 holds the NHWC float32 input (batch 1), little-endian.
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, '..', '..', 'third_party', 'npm', 'node_modules');
const tf = require(path.join(modules, '@tensorflow/tfjs-core'));
require(path.join(modules, '@tensorflow/tfjs-backend-cpu'));
const converter = require(path.join(modules, '@tensorflow/tfjs-converter'));

async function main() {
  const [modelPath, inputPath, shapeArg, outPath] = process.argv.slice(2);
  if (!outPath) {
    console.error('usage: tfjs_run.js MODEL.json INPUT.f32 H,W,C OUT.json');
    process.exit(2);
  }
  await tf.setBackend('cpu');
  const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const graph = await converter.loadGraphModel(tf.io.fromMemory({
    modelTopology: model.modelTopology, weightSpecs: specs, weightData, format: model.format,
  }));
  const shape = [1, ...shapeArg.split(',').map(Number)];
  const raw = fs.readFileSync(inputPath);
  const input = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), shape);
  const names = graph.outputs.map((o) => o.name);
  let outs = graph.execute(input, names);
  if (!Array.isArray(outs)) outs = [outs];
  const result = { backend: tf.getBackend(), outputs: {} };
  names.forEach((n, i) => { result.outputs[n] = Array.from(outs[i].dataSync()); });
  fs.writeFileSync(outPath, JSON.stringify(result));
}

main().catch((e) => { console.error(`tfjs_run: ${e.stack || e}`); process.exit(1); });
