// Drives a running moe serve with the official OpenAI client library, as a user's program would.
// Usage: node openai-client.mjs BASE_URL   (e.g. http://127.0.0.1:8000/v1); prints one JSON object.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.argv[2], apiKey: process.argv[3] ?? 'unused', maxRetries: 0 });
const prompt = 'In the beginning God created';
const out = {};
const models = await client.models.list();
out.models = models.data.map((m) => m.id);
const model = out.models[0];

const c = await client.completions.create({ model, prompt, max_tokens: 48, temperature: 0 });
out.completion = c.choices[0].text;
out.finish = c.choices[0].finish_reason;
out.usage = c.usage;

let streamed = '';
for await (const chunk of await client.completions.create({ model, prompt, max_tokens: 48, temperature: 0, stream: true })) {
  streamed += chunk.choices[0]?.text ?? '';
}
out.streamed = streamed;

const messages = [{ role: 'user', content: 'And God said' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
out.chat = chat.choices[0].message;
let chatStreamed = '';
for await (const chunk of await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true })) {
  chatStreamed += chunk.choices[0]?.delta?.content ?? '';
}
out.chatStreamed = chatStreamed;

try {
  await client.completions.create({ model, prompt: 'x', max_tokens: 0 });
  out.badRequest = 'accepted';
} catch (e) {
  out.badRequest = { status: e.status, param: e.param ?? null, type: e.type ?? null };
}
console.log(JSON.stringify(out));
