// llama.cpp (node-llama-cpp's prebuilt CPU binaries) continuing prompts greedily: the accuracy peer of bench/scripts/quant.sh.
// usage: node llamacpp-greedy.mjs MODEL.gguf PROMPTS.jsonl TOKENS
// PROMPTS.jsonl: lines {"id", "prompt": [token ids]} (what `moe eval --greedy` prints); prints {"id", "greedy": [ids]} lines.
// KV=F32 keeps llama.cpp's KV cache in fp32 (its default is F16; moe-serve's cache is fp32).
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";
const [file, promptsFile, tokens] = [process.argv[2], process.argv[3], Number(process.argv[4])];
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath: file});
for (const line of readFileSync(promptsFile, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const {id, prompt} = JSON.parse(line);
  const kv = process.env.KV ? {experimentalKvCacheKeyType: process.env.KV, experimentalKvCacheValueType: process.env.KV} : {};
  const ctx = await model.createContext({contextSize: Math.max(256, prompt.length + tokens + 8), threads: 2, batchSize: Math.max(64, prompt.length), ...kv});
  const out = [];
  for await (const tok of ctx.getSequence().evaluate(prompt, {temperature: 0})) {
    out.push(tok);
    if (out.length >= tokens) break;
  }
  console.log(JSON.stringify({id, greedy: out}));
  await ctx.dispose();
}
