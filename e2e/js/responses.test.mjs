// The Responses and Conversations APIs through the official openai npm package:
// create/retrieve/delete, streaming event order and concatenation,
// previous_response_id chains, two-turn function calling on Claude through
// Converse (turn 2 carries the call and its output, and no tools),
// max_output_tokens truncation, and a conversation of more than 20 items paged
// with `after`. Environment: LLAMA_STACK_BASE_URL, MODEL_ID (gpt-oss) and
// CLAUDE_MODEL_ID (a Claude model served through Converse).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { BASE_URL, EXPECTED_MODEL_ID, TEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS, show } from './common.mjs';

const GPT = EXPECTED_MODEL_ID;
const CLAUDE = process.env.CLAUDE_MODEL_ID || 'bedrock/claude';

const client = new OpenAI({
  baseURL: `${BASE_URL}/v1`,
  apiKey: process.env.OPENAI_API_KEY || 'none',
  maxRetries: 0,
  timeout: REQUEST_TIMEOUT_MS,
});

const opts = { timeout: TEST_TIMEOUT_MS };

test('create, retrieve, input items, delete', opts, async () => {
  const r = await client.responses.create({ model: GPT, input: 'What is the capital of France?', metadata: { suite: 'js' } });
  assert.equal(r.object, 'response', show(r));
  assert.equal(r.status, 'completed', show(r));
  assert.match(r.id, /^resp_/);
  assert.equal(r.model, GPT);
  assert.equal(r.output_text, 'The capital of France is **Paris**.', show(r.output));
  assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message']);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  assert.equal(r.metadata.suite, 'js');

  const got = await client.responses.retrieve(r.id);
  assert.equal(got.output_text, r.output_text);

  const items = await client.responses.inputItems.list(r.id);
  assert.equal(items.data.length, 1, show(items.data));
  assert.equal(items.data[0].role, 'user');
  assert.equal(items.data[0].content[0].text, 'What is the capital of France?');

  await client.responses.delete(r.id);
  await assert.rejects(client.responses.retrieve(r.id), (err) => err.status === 404);
});

test('streaming: event order, sequence numbers, concatenation', opts, async () => {
  for (const model of [GPT, CLAUDE]) {
    const stream = await client.responses.create({ model, input: 'Write a haiku about code', stream: true });
    const types = [];
    let text = '';
    let final;
    let seq = 0;
    for await (const ev of stream) {
      assert.equal(ev.sequence_number, seq++, `${model}: ${show(ev)}`);
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') final = ev.response;
    }
    assert.equal(types[0], 'response.created', show(types));
    assert.equal(types[1], 'response.in_progress', show(types));
    assert.equal(types.at(-1), 'response.completed', show(types));
    assert.equal(types.filter((t) => ['response.completed', 'response.failed', 'response.incomplete'].includes(t)).length, 1);
    for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done']) {
      assert.ok(types.includes(t), `${model}: no ${t} in ${show(types)}`);
    }
    const want = 'Code flows like rivers\nDebugging whispers in loops\nLogic blooms at dawn';
    assert.equal(text, want);
    const got = await client.responses.retrieve(final.id);
    assert.equal(got.status, 'completed');
    assert.equal(got.output_text, want);
  }
});

test('previous_response_id chain', opts, async () => {
  const r1 = await client.responses.create({ model: CLAUDE, input: 'Hello, my name is Grace Hopper.' });
  const r2 = await client.responses.create({ model: CLAUDE, input: 'What is my name?', previous_response_id: r1.id });
  assert.equal(r2.previous_response_id, r1.id);
  assert.equal(r2.output_text, 'Your name is Grace Hopper.');
});

test('function calling on Claude through Converse; turn 2 has no tools', opts, async () => {
  const tools = [{
    type: 'function',
    name: 'get_weather',
    description: 'Current weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  }];
  const input = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const r1 = await client.responses.create({ model: CLAUDE, input, tools });
  assert.deepEqual(r1.output.map((o) => o.type), ['function_call'], show(r1.output));
  const call = r1.output[0];
  assert.equal(call.name, 'get_weather');
  assert.equal(JSON.parse(call.arguments).city, 'Paris');
  const r2 = await client.responses.create({
    model: CLAUDE,
    input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temperature":21}' }],
  });
  assert.equal(r2.output_text, 'The tool returned: {"temperature":21}', show(r2.output));
});

test('max_output_tokens truncates to incomplete', opts, async () => {
  const r = await client.responses.create({ model: GPT, input: 'Tell me about quantum computing', max_output_tokens: 16 });
  assert.equal(r.status, 'incomplete', show(r));
  assert.equal(r.incomplete_details.reason, 'max_output_tokens');
});

test('a tool this server does not run is a 400 naming it', opts, async () => {
  await assert.rejects(
    client.responses.create({ model: GPT, input: 'x', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }),
    (err) => err.status === 400 && /file_search/.test(err.message),
  );
});

test('conversation of more than 20 items, paged with after', opts, async () => {
  const conv = await client.conversations.create({ metadata: { topic: 'js' }, items: [{ type: 'message', role: 'user', content: 'note 0' }] });
  assert.match(conv.id, /^conv_[0-9a-f]{48}$/);
  for (let batch = 0; batch < 2; batch++) {
    const items = [];
    for (let i = 1; i <= 11; i++) items.push({ type: 'message', role: 'user', content: `note ${batch * 11 + i}` });
    const added = await client.conversations.items.create(conv.id, { items });
    assert.equal(added.data.length, 11);
  }
  const r = await client.responses.create({ model: CLAUDE, input: 'hello', conversation: conv.id });
  assert.equal(r.conversation.id, conv.id);

  const first = await client.conversations.items.list(conv.id, { order: 'asc', limit: 10 });
  assert.equal(first.data.length, 10);
  assert.equal(first.has_more, true);
  const texts = [];
  for await (const item of client.conversations.items.list(conv.id, { order: 'asc', limit: 10 })) {
    texts.push(`${item.role}:${item.content[0].text}`);
  }
  assert.equal(texts.length, 25, show(texts));
  assert.equal(texts[0], 'user:note 0');
  assert.equal(texts[22], 'user:note 22');
  assert.equal(texts[23], 'user:hello');
  assert.equal(texts[24], 'assistant:Hello! How can I help you today?');

  const one = await client.conversations.items.retrieve(first.data[3].id, { conversation_id: conv.id });
  assert.equal(one.content[0].text, 'note 3');
  const updated = await client.conversations.update(conv.id, { metadata: { topic: 'changed' } });
  assert.equal(updated.metadata.topic, 'changed');
  const deleted = await client.conversations.delete(conv.id);
  assert.equal(deleted.deleted, true);
});
