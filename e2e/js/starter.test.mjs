// The built-in starter config with two providers switched on by their
// environment variables at once (OpenAI via OPENAI_API_KEY, Ollama via
// OLLAMA_URL, both pointed at OpenAI-compatible doubles by the harness),
// used through the official openai npm package. Environment:
// LLAMA_STACK_BASE_URL, STARTER_CHAT_MODELS (comma-separated ids the
// server must list, one per provider), STARTER_EMBED_MODEL.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { BASE_URL, TEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS, show } from './common.mjs';

const CHAT_MODELS = (process.env.STARTER_CHAT_MODELS || '').split(',').filter(Boolean);
const EMBED_MODEL = process.env.STARTER_EMBED_MODEL || '';
const opts = { timeout: TEST_TIMEOUT_MS };

// The SDK refuses an empty key; the server does not ask for one.
const client = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: 'none', maxRetries: 0, timeout: REQUEST_TIMEOUT_MS });

test('starter: the environment says which models to expect', () => {
  assert.ok(CHAT_MODELS.length >= 2, `STARTER_CHAT_MODELS must name a model of each provider, got ${show(CHAT_MODELS)}`);
  assert.ok(EMBED_MODEL, 'STARTER_EMBED_MODEL must be set');
});

test('starter: models.list() has the models of both providers', opts, async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const want of [...CHAT_MODELS, EMBED_MODEL]) {
    assert.ok(ids.includes(want), `expected ${show(want)} among the listed models, got ${show(ids)}`);
  }
  const providers = new Set(CHAT_MODELS.map((id) => id.split('/')[0]));
  assert.ok(providers.size >= 2, `expected models from two providers, got ${show(CHAT_MODELS)}`);
});

for (const model of CHAT_MODELS) {
  test(`starter: chat with ${model}, non-streaming and streaming`, opts, async () => {
    const resp = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'ping pong' }] });
    assert.equal(resp.model, model, `expected the client-facing model id, got ${show(resp)}`);
    assert.equal(resp.choices[0].message.content, 'echo: ping pong', `unexpected answer ${show(resp)}`);

    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'one two three' }], stream: true });
    let text = '';
    let finish = null;
    for await (const chunk of stream) {
      assert.equal(chunk.model, model, `chunk model: ${show(chunk)}`);
      const c = chunk.choices[0];
      if (c?.delta?.content) text += c.delta.content;
      if (c?.finish_reason) finish = c.finish_reason;
    }
    assert.equal(text, 'echo: one two three', `streamed text ${show(text)}`);
    assert.equal(finish, 'stop');
  });
}

test('starter: legacy completions through the first provider', opts, async () => {
  const model = CHAT_MODELS[0];
  const resp = await client.completions.create({ model, prompt: 'hello world', max_tokens: 10 });
  assert.equal(resp.model, model);
  assert.equal(resp.choices[0].text, 'echo: hello world', `unexpected completion ${show(resp)}`);
});

test('starter: embeddings', opts, async () => {
  const resp = await client.embeddings.create({ model: EMBED_MODEL, input: ['a', 'b', 'c'], encoding_format: 'float' });
  assert.equal(resp.model, EMBED_MODEL);
  assert.equal(resp.data.length, 3, `expected three vectors, got ${show(resp)}`);
  assert.deepEqual(resp.data.map((d) => d.index), [0, 1, 2]);
  assert.ok(resp.data.every((d) => Array.isArray(d.embedding) && d.embedding.length > 0), `vectors: ${show(resp.data)}`);
});

test('starter: embeddings on a chat model is a 400 naming the model', opts, async () => {
  const model = CHAT_MODELS[0];
  await assert.rejects(
    client.embeddings.create({ model, input: 'x' }),
    (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && String(err.message).includes(model),
  );
});
