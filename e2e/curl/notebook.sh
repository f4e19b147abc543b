#!/usr/bin/env bash
# The Bedrock inference notebook's "cURL Equivalent Commands", run against a
# llama-stack-go server, with each output checked by jq/grep.
#
# The notebook's lines below are copied VERBATIM; only the host
# (http://localhost:8321) is replaced by "$BASE". That includes the notebook's
# quoting of the model id, '"'"$MODEL_ID"'"', which is what users paste.
#
# Environment:
#   LLAMA_STACK_BASE_URL  server root without /v1 (default http://localhost:8321)
#   MODEL_ID              the id discovery must find (default bedrock/openai.gpt-oss-20b-1:0);
#                         the notebook's discovery line then sets MODEL_ID itself
# Needs: bash, curl, jq. Prints "ok <name>" per check; exits non-zero at the first failure.
set -euo pipefail

BASE="${LLAMA_STACK_BASE_URL:-http://localhost:8321}"
BASE="${BASE%/}"
EXPECTED_MODEL_ID="${MODEL_ID:-bedrock/openai.gpt-oss-20b-1:0}"

step=setup
fail() {
	printf 'FAIL %s: %s\n' "$step" "$*" >&2
	exit 1
}
ok() { printf 'ok %s\n' "$step"; }
# Any command that fails outside an explicit check still names the step.
trap 'printf "FAIL %s: command exited with status %s (line %s): %s\n" "$step" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

for tool in curl jq; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Shows a captured output (and curl's stderr) in failure messages, cut to 2000 chars.
excerpt() { head -c 2000 <<<"$1"; }
# curl's stderr holds its progress meter (the notebook's lines have no -s): show only its error lines.
stderr_of() {
	local errs
	errs=$(tr '\r' '\n' <"$TMP/$1.stderr" 2>/dev/null | grep '^curl:' || true)
	[ -z "$errs" ] || printf '\n%s' "$errs"
}

# What the notebook's quoting sends as the request body, for a clear message if
# the server rejects it (it puts the id in single quotes: "model": 'bedrock/…').
quoting_note() {
	local body
	# shellcheck disable=SC2027 # the notebook's quoting, on purpose
	body='{"model": '"'"$MODEL_ID"'"'}'
	if ! jq -e . >/dev/null 2>&1 <<<"$body"; then
		printf '\nnote: the notebook quoting %s sends %s, which is not valid JSON (the id is in single quotes)' \
			"'\"'\"\$MODEL_ID\"'\"'" "$body"
	fi
}

# --- GET /v1/health -> 200 -----------------------------------------------------
step=health
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/health") || true
[ "$code" = 200 ] || fail "expected HTTP 200 from GET $BASE/v1/health, got '${code:-none}'"
ok

# --- Model auto-discovery (notebook, verbatim but for the host) ---------------
step=discover-model
MODEL_ID=$(curl -s "$BASE"/v1/models | jq -r '.data[] | select(.custom_metadata.provider_id=="bedrock") | .id' | head -1)
echo "Using model: $MODEL_ID"
[ "$MODEL_ID" = "$EXPECTED_MODEL_ID" ] ||
	fail "expected the first /v1/models entry with custom_metadata.provider_id \"bedrock\" to be '$EXPECTED_MODEL_ID', got '$MODEL_ID'"
ok

# --- Example 1: Simple Chat Completion (notebook, verbatim but for the host) --
step=example1
ex1=$(
	{
# shellcheck disable=SC2027,SC2086 # the notebook's quoting, verbatim
curl -X POST "$BASE/v1/chat/completions" \
  -H "Content-Type: application/json" \
  -d '{
    "model": '"'"$MODEL_ID"'"',
    "messages": [{"role": "user", "content": "Which planet do humans live on?"}],
    "stream": false
  }' | jq
	} 2>"$TMP/example1.stderr"
)
jq -e '.choices[0].message.content | type == "string" and contains("Earth")' >/dev/null <<<"$ex1" ||
	fail "expected .choices[0].message.content to contain \"Earth\", got: $(excerpt "$ex1")$(quoting_note)$(stderr_of example1)"
jq -e '.usage.total_tokens | type == "number" and . > 0' >/dev/null <<<"$ex1" ||
	fail "expected .usage.total_tokens > 0, got .usage = $(jq -c '.usage' <<<"$ex1" 2>/dev/null || echo '?') in: $(excerpt "$ex1")"
ok

# --- Example 2: Streaming (notebook, verbatim but for the host) ---------------
step=example2
ex2=$(
	{
# shellcheck disable=SC2027,SC2086 # the notebook's quoting, verbatim
curl -X POST "$BASE/v1/chat/completions" \
  -H "Content-Type: application/json" \
  -d '{
    "model": '"'"$MODEL_ID"'"',
    "messages": [{"role": "user", "content": "Count to 5"}],
    "stream": true
  }'
	} 2>"$TMP/example2.stderr"
)
ex2=$(tr -d '\r' <<<"$ex2")
data_lines=$(grep '^data: ' <<<"$ex2" || true)
[ -n "$data_lines" ] ||
	fail "expected Server-Sent Events with 'data: ' lines, got: $(excerpt "$ex2")$(quoting_note)$(stderr_of example2)"
last_line=$(tail -n 1 <<<"$data_lines")
[ "$last_line" = 'data: [DONE]' ] ||
	fail "expected the last data line to be 'data: [DONE]', got '$last_line'"
# Each data line but [DONE] is one JSON chunk: concatenate their delta.content.
if ! deltas=$(sed -e 's/^data: //' -e '/^\[DONE\]$/d' <<<"$data_lines" |
	jq -j '.choices[]?.delta.content // empty' 2>"$TMP/example2.jq"); then
	fail "expected every data line but [DONE] to be a JSON chunk; jq said: $(cat "$TMP/example2.jq"); stream: $(excerpt "$ex2")"
fi
grep -qF '1, 2, 3, 4, 5' <<<"$deltas" ||
	fail "expected the concatenated delta.content to contain \"1, 2, 3, 4, 5\", got: $(excerpt "$deltas")"
ok

# --- Example 5: With Sampling Parameters (notebook, verbatim but for the host) -
step=example5
ex5=$(
	{
# shellcheck disable=SC2027,SC2086 # the notebook's quoting, verbatim
curl -X POST "$BASE/v1/chat/completions" \
  -H "Content-Type: application/json" \
  -d '{
    "model": '"'"$MODEL_ID"'"',
    "messages": [{"role": "user", "content": "Write a haiku"}],
    "temperature": 0.7,
    "max_tokens": 50,
    "stream": false
  }' | jq
	} 2>"$TMP/example5.stderr"
)
jq -e 'type == "object"' >/dev/null <<<"$ex5" ||
	fail "expected a JSON object, got: $(excerpt "$ex5")$(stderr_of example5)"
jq -e '.usage.completion_tokens | type == "number" and . <= 50' >/dev/null <<<"$ex5" ||
	fail "expected .usage.completion_tokens <= 50 (max_tokens 50), got .usage = $(jq -c '.usage' <<<"$ex5") in: $(excerpt "$ex5")$(quoting_note)"
ok

step=finished
echo "all curl checks passed"
