// openai_client: the official `openai` npm client against inferd's OpenAI routes (run by
// scripts/openai-client.sh from the serve_generate suite). A chat completion streamed and the
// same one plain, then a completion streamed and plain, all greedy (temperature 0): the
// streamed texts, finish reasons and usage must equal the plain ones (but the plain one's prompt
// comes from the prefix cache: its cached_tokens).
//
//   node tests/integration/openai_client.mjs TOOLS_DIR BASE_URL MODEL
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

const [tools, baseURL, model] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(tools), "package.json"));
const OpenAI = require("openai");
const client = new OpenAI({ baseURL, apiKey: "inferd-test", maxRetries: 0, timeout: 60000 });

async function streamed(stream) {
    let text = "", finish = null, usage = null, chunks = 0;
    for await (const chunk of stream) {
        chunks++;
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
            text += c.delta ? (c.delta.content ?? "") : (c.text ?? "");
            if (c.finish_reason) finish = c.finish_reason;
        }
    }
    return { text, finish, usage, chunks };
}

const messages = [{ role: "user", content: "Hello!" }];
const chatArgs = { model, messages, max_tokens: 12, temperature: 0 };
const chat = await streamed(await client.chat.completions.create(
    { ...chatArgs, stream: true, stream_options: { include_usage: true } }));
const chatPlain = await client.chat.completions.create(chatArgs);
assert.equal(chatPlain.object, "chat.completion");
assert.equal(chat.text, chatPlain.choices[0].message.content, "streamed chat text");
assert.equal(chat.finish, chatPlain.choices[0].finish_reason, "streamed chat finish_reason");
// the plain request repeats the streamed one's prompt: all of it but the last token comes from
// the prefix cache (usage.prompt_tokens_details.cached_tokens); the counts are the same
const sameCounts = (a, b, what) => {
    const { prompt_tokens_details: da, ...ca } = a, { prompt_tokens_details: db, ...cb } = b;
    assert.deepEqual(ca, cb, what);
    assert.equal(typeof da.cached_tokens, "number", what);
    assert.equal(db.cached_tokens, b.prompt_tokens - 1, `${what}: cached_tokens of the repeat`);
};
sameCounts(chat.usage, chatPlain.usage, "streamed chat usage");
assert.ok(chat.chunks >= 3, "a chat stream of several chunks");

const compArgs = { model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 };
const comp = await streamed(await client.completions.create(
    { ...compArgs, stream: true, stream_options: { include_usage: true } }));
const compPlain = await client.completions.create(compArgs);
assert.equal(compPlain.object, "text_completion");
assert.equal(comp.text, compPlain.choices[0].text, "streamed completion text");
sameCounts(comp.usage, compPlain.usage, "streamed completion usage");
assert.equal(compPlain.usage.completion_tokens, 8);

const models = await client.models.list();
assert.ok(models.data.some((m) => m.id === model), "the model in /v1/models");

console.log(`openai-client: ok (chat ${JSON.stringify(chat.text)} in ${chat.chunks} chunks, ` +
    `completion ${JSON.stringify(comp.text)})`);
