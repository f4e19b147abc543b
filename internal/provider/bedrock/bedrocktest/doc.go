// Package bedrocktest is a test double for the OpenAI-compatible chat
// surface of Amazon Bedrock Runtime (bedrock-runtime, gpt-oss models), as
// recorded in April 2026 (see shared/reference/bedrock-wire.md §1 and §2 and
// the fixtures in shared/fixtures/bedrock).
//
// A [Server] is an HTTP server on 127.0.0.1 that serves
//
//	POST /openai/v1/chat/completions
//
// and answers every other method or path (including GET /openai/v1/models,
// which bedrock-runtime does not have) with 404 UnknownOperationException.
// Start one with [New] in a test or [Start] in a standalone process and point
// the code under test at [Server.URL].
//
// # Checks, in order
//
//  1. Auth: "Authorization: Bearer <key>" with a key in [Options.Keys]. A key
//     in [Options.ExpiredKeys] gets the bytes of error-bearer-expired-403.http;
//     a SigV4 header (AWS4-HMAC-SHA256) gets error-sigv4-unrecognized-client-403.http;
//     any other key, or no header, gets error-bearer-invalid-key-403.http.
//  2. The body must be a JSON object whose known members have the right types,
//     else 400 (double-encoded validation_error envelope, like the image error).
//  3. A model in [Options.NoAccess]: 403 AccessDeniedException,
//     {"Message":"You don't have access to the model with the specified model ID."}.
//     A model not in [Options.Models]: 404 model_not_found.
//  4. A top-level member outside the backend's accepted list (bedrock-wire §1.5):
//     400 unknown_parameter naming the first such member.
//  5. messages must be a non-empty array; n must be 1..128; max_tokens and
//     max_completion_tokens must be ≥ 1 (400 validation_error otherwise).
//     A user message with an image_url part: 400 with the exact body of
//     runtime-chat-completion-error-400-image-modality.response.json.
//  6. Injected faults ([Server.Throttle], [Server.FailWith]) apply to requests
//     that passed all checks above.
//
// # Answers
//
// The [Reply] comes from [Options.Responder], by default [DefaultResponder].
// Non-streaming answers are a chat.completion whose message content is
// "<reasoning>"+Reasoning+"</reasoning>"+Answer (the tags are left out when
// Reasoning is empty), with key order and nulls as in the recorded fixture.
// Streaming answers ("stream":true) are text/event-stream, one
// "data: <json>\n\n" event per chunk, each flushed on its own, in this order
// for every choice (choices of n > 1 interleave chunk by chunk):
//
//	role chunk          delta {"content":"","role":"assistant"}
//	empty chunk         delta content null (a harmony channel switch)
//	reasoning pieces    each "<reasoning>"+piece+"</reasoning>" (~3 words a piece)
//	empty chunk         only when reasoning and an answer or tool call both follow
//	answer pieces       ~3 words each; the last content chunk carries finish_reason
//	tool call chunks    first: index 0, id, type, name, first argument fragment;
//	                    then chunks of up to 6 fragments each (id and name null);
//	                    then a chunk with only finish_reason "tool_calls"
//	usage chunk         "choices":[] and usage; only with stream_options.include_usage
//	data: [DONE]
//
// Every choice of every chunk carries a random-length alphanumeric
// "obfuscation" string. Pieces concatenate back to the exact reasoning and
// answer text.
//
// Token counts are whitespace-separated words: prompt_tokens is the number of
// words of all message texts plus 70; completion_tokens is the number of
// words of reasoning, answer and tool call name and arguments, times n.
// When max_tokens or max_completion_tokens (the smaller of the two if both
// are set) is below the completion's word count, reasoning and then answer
// are cut to that many words, a tool call is dropped, and finish_reason is
// "length".
//
// # Faults
//
// Each fault setter takes a count n: n > 0 applies the fault to the next n
// requests it concerns, n < 0 to every such request until the setter is
// called again with 0, and n == 0 turns the fault off. [Server.Throttle] and
// [Server.FailWith] concern every chat request that passed the checks;
// [Server.DropStreamAfter], [Server.StallStreamAfter] and [Server.Replay]
// concern streaming requests only. Chunk counts in DropStreamAfter and
// StallStreamAfter count data events (the first chunk is 1); the 200 status
// and headers are always sent first, and the final data: [DONE] is never
// sent to a dropped or stalled stream.
package bedrocktest
