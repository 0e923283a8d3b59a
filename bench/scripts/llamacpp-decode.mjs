// llama.cpp (through node-llama-cpp's prebuilt CPU binaries) decoding a GGUF greedily: the peer in bench/scripts/peers.sh.
// usage: node llamacpp-decode.mjs MODEL.gguf THREADS REPS TOKENS PROMPT
import {getLlama} from "node-llama-cpp";
const [file, threads, reps, tokens, prompt] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6]];
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath: file});
const input = Array.from(Buffer.from(prompt, "latin1"));  // byte-level vocabulary: token id = byte
const rates = [];
let first;
for (let r = -2; r < reps; r++) {                        // two warm-up reps
  const ctx = await model.createContext({contextSize: 256, threads, batchSize: 64});
  const seq = ctx.getSequence();
  const out = [];
  let t0 = 0;
  for await (const tok of seq.evaluate(input, {temperature: 0})) {
    if (out.length === 0) t0 = performance.now();         // decode time: after the first token (prefill done)
    out.push(tok);
    if (out.length >= tokens) break;
  }
  const secs = (performance.now() - t0) / 1000;
  if (r >= 0) rates.push((out.length - 1) / secs);
  if (r === 0) first = out;
  await ctx.dispose();
}
rates.sort((a, b) => a - b);
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp)", threads, median_tokens_per_s: rates[rates.length >> 1],
  min: rates[0], max: rates[rates.length - 1], reps, text: Buffer.from(first).toString("latin1")}));
