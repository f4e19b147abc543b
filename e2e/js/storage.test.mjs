// Stored state through the official llama-stack-client npm package: chat
// completions are recorded and listed/retrieved with chat.completions, and a
// model is registered and unregistered with models.register/unregister
// (0.3.x has them; 0.7.x reads them back).
// Environment: LLAMA_STACK_BASE_URL, MODEL_ID (see README.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import LlamaStackClient from 'llama-stack-client';
import LlamaStackClientV03 from 'llama-stack-client-v0-3';

import { BASE_URL, EXPECTED_MODEL_ID as MODEL_ID, TEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS, expectRejection, describeError, show } from './common.mjs';

// expectStatus awaits a call that must fail with an HTTP status.
async function expectStatus(promise, status, what) {
  const err = await expectRejection(promise, what);
  assert.equal(err?.status, status, `${what}: expected HTTP ${status}, got ${describeError(err)}`);
}

const client = new LlamaStackClient({ baseURL: BASE_URL, maxRetries: 0, timeout: REQUEST_TIMEOUT_MS });
const v03 = new LlamaStackClientV03({ baseURL: BASE_URL, maxRetries: 0, timeout: REQUEST_TIMEOUT_MS });
const opts = { timeout: TEST_TIMEOUT_MS };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Writes are batched off the request path; poll briefly for them.
async function retrieveEventually(id) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await client.chat.completions.retrieve(id);
    } catch (err) {
      if (err?.status !== 404 || Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

test('chat.completions.list/retrieve return what chat.completions.create answered', opts, async () => {
  const created = [];
  for (const q of ['first question', 'second question', 'third question']) {
    created.push(await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: q }] }));
  }
  const stream = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: 'streamed question' }], stream: true });
  let streamedID = '';
  let streamedText = '';
  for await (const chunk of stream) {
    streamedID = chunk.id;
    streamedText += chunk.choices?.[0]?.delta?.content ?? '';
  }
  for (const c of created) {
    const got = await retrieveEventually(c.id);
    assert.equal(got.id, c.id);
    assert.equal(got.model, MODEL_ID, `retrieve: model ${show(got.model)}`);
    assert.equal(got.choices[0].message.content, c.choices[0].message.content, `retrieve: choices differ: ${show(got.choices)}`);
    assert.ok(Array.isArray(got.input_messages) && got.input_messages[0].role === 'user', `retrieve: input_messages ${show(got.input_messages)}`);
  }
  const streamed = await retrieveEventually(streamedID);
  assert.equal(streamed.choices[0].message.content, streamedText, 'a streamed completion is stored as the client assembled it');
  assert.equal(streamed.input_messages[0].content, 'streamed question');

  const page = await client.chat.completions.list({ limit: 2, order: 'desc', model: MODEL_ID });
  assert.equal(page.data.length, 2, `list: ${show(page)}`);
  assert.equal(page.has_more, true, `list: has_more ${show(page)}`);
  assert.equal(page.first_id, page.data[0].id);
  assert.equal(page.last_id, page.data[1].id);
  assert.equal(page.data[0].id, streamedID, 'newest first');
  const next = await client.chat.completions.list({ limit: 100, order: 'desc', after: page.last_id });
  const ids = new Set([...page.data, ...next.data].map((c) => c.id));
  for (const c of created) assert.ok(ids.has(c.id), `list pages miss ${c.id}`);
  await expectStatus(client.chat.completions.retrieve('chatcmpl-does-not-exist'), 404, 'retrieve unknown id');
});

test('models.register / retrieve / unregister', opts, async () => {
  const id = `registered-${Date.now()}`;
  const m = await v03.models.register({ model_id: id, provider_id: 'bedrock', provider_model_id: 'openai.gpt-oss-120b-1:0', metadata: { owner: 'e2e' } });
  assert.equal(m.identifier, id, `register: ${show(m)}`);
  assert.equal(m.provider_resource_id, 'openai.gpt-oss-120b-1:0');
  const got = await client.models.retrieve(id);
  assert.equal(got.provider_id, 'bedrock');
  assert.deepEqual(got.metadata, { owner: 'e2e' });
  const listed = await client.models.list();
  assert.ok(listed.some((x) => x.id === id), `models.list misses ${id}`);
  const answer = await client.chat.completions.create({ model: id, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.model, id, 'the answer carries the registered id');
  await expectStatus(v03.models.register({ model_id: id, provider_id: 'bedrock' }), 409, 'register twice');
  await expectStatus(v03.models.register({ model_id: 'x', provider_id: 'nope' }), 400, 'register with an unknown provider');
  await v03.models.unregister(id);
  await expectStatus(client.models.retrieve(id), 404, 'retrieve after unregister');
  await expectStatus(v03.models.unregister(MODEL_ID), 400, 'unregister a model of the run config');
});
