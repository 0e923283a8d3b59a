// llama.cpp (through node-llama-cpp's prebuilt CPU binaries) decoding a GGUF greedily: the peer in bench/scripts/peers.sh.
// usage: node llamacpp-decode.mjs MODEL.gguf THREADS REPS TOKENS PROMPT
// Prints decode tokens/s (after the first token) and prefill tokens/s (the prompt's tokens over the time to the first
// token, which is prefill plus one sampling step), medians over REPS.
import {getLlama} from "node-llama-cpp";
const [file, threads, reps, tokens, prompt] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6]];
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath: file});
const input = Array.from(Buffer.from(prompt, "latin1"));  // byte-level vocabulary: token id = byte
const rates = [], prefill = [];
let first;
for (let r = -2; r < reps; r++) {                        // two warm-up reps
  const ctx = await model.createContext({contextSize: Math.max(256, input.length + tokens + 8), threads,
    batchSize: Math.max(64, input.length)});
  const start = performance.now();
  const seq = ctx.getSequence();
  const out = [];
  let t0 = 0;
  for await (const tok of seq.evaluate(input, {temperature: 0})) {
    if (out.length === 0) {                               // decode time: after the first token (prefill done)
      t0 = performance.now();
      if (r >= 0) prefill.push(input.length / ((t0 - start) / 1000));
    }
    out.push(tok);
    if (out.length >= tokens) break;
  }
  const secs = (performance.now() - t0) / 1000;
  if (r >= 0) rates.push((out.length - 1) / secs);
  if (r === 0) first = out;
  await ctx.dispose();
}
rates.sort((a, b) => a - b);
prefill.sort((a, b) => a - b);
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp)", threads, median_tokens_per_s: rates[rates.length >> 1],
  min: rates[0], max: rates[rates.length - 1], prefill_tokens: input.length, median_prefill_tokens_per_s: prefill[prefill.length >> 1],
  reps, text: Buffer.from(first).toString("latin1")}));
