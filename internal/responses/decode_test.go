package responses

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var decodeSeeds = []string{
	`"hello"`,
	`[{"role":"user","content":"hi"}]`,
	`[{"type":"message","role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"}]}]`,
	`[{"type":"message","role":"assistant","id":"msg_1","status":"completed","content":[{"type":"output_text","text":"ok","annotations":[]},{"type":"refusal","refusal":"no"}]}]`,
	`[{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}","status":"completed"}]`,
	`[{"type":"function_call_output","call_id":"call_1","output":"42"}]`,
	`[{"type":"function_call_output","call_id":"call_1","output":[{"type":"input_text","text":"42"}]}]`,
	`[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"s"}],"content":[{"type":"reasoning_text","text":"r"}],"encrypted_content":"x"}]`,
	`[{"type":"mcp_list_tools","id":"mcpl_1","server_label":"s","tools":[{"name":"t","input_schema":{},"description":"d","annotations":null}],"error":null}]`,
	`[{"type":"mcp_call","id":"mcp_1","server_label":"s","name":"t","arguments":"{}","output":"o","error":null,"status":"completed","approval_request_id":null}]`,
	`[{"type":"mcp_approval_request","id":"mcpr_1","server_label":"s","name":"t","arguments":"{}"}]`,
	`[{"type":"mcp_approval_response","approval_request_id":"mcpr_1","approve":false,"reason":"no"}]`,
	`[{"type":"web_search_call"}]`,
	`[{"type":"nope"}]`,
	`[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]`,
	`[{"role":"system","content":null}]`,
	`[1,2]`,
	`{}`,
	`null`,
}

func TestDecodeInput(t *testing.T) {
	tests := []struct {
		in    string
		want  []Item
		param string // set when an error is expected
		msg   string
	}{
		{in: `"hi"`, want: []Item{{Type: TypeMessage, Role: "user", Content: []Part{{Type: PartInputText, Text: "hi"}}}}},
		{in: `[{"role":"assistant","content":"yo"}]`, want: []Item{{Type: TypeMessage, Role: "assistant", Content: []Part{{Type: PartOutputText, Text: "yo"}}}}},
		{in: `[{"role":"developer","content":[{"type":"input_text","text":"a"}]}]`, want: []Item{{Type: TypeMessage, Role: "developer", Content: []Part{{Type: PartInputText, Text: "a"}}}}},
		{in: `[{"type":"function_call_output","call_id":"c","output":"x"}]`, want: []Item{{Type: TypeFunctionCallOutput, CallID: "c", Output: json.RawMessage(`"x"`)}}},
		{in: `[{"role":"user","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]`, want: []Item{{Type: TypeMessage, Role: "user", Content: []Part{{Type: PartInputImage, ImageURL: new("https://x/y.png"), Detail: "auto"}}}}},
		{in: `[{"type":"function_call","call_id":"c","name":"f"}]`, param: "input[0].arguments", msg: "required"},
		{in: `[{"type":"function_call","name":"f","arguments":"{}"}]`, param: "input[0].call_id", msg: "required"},
		{in: `[{"type":"function_call_output","call_id":"c"}]`, param: "input[0].output", msg: "required"},
		{in: `[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]`, param: "input[0].content[0].type", msg: "'input_file' is not supported"},
		{in: `[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]`, param: "input[0].content[0].file_id", msg: "not supported"},
		{in: `[{"role":"user","content":[{"type":"sticker"}]}]`, param: "input[0].content[0].type", msg: "unknown content part type 'sticker'"},
		{in: `[{"role":"user","content":[{"type":"refusal","refusal":"x"}]}]`, param: "input[0].content[0].type", msg: "assistant"},
		{in: `[{"content":"x"}]`, param: "input[0].type", msg: "required"},
		{in: `[{"type":"hologram"}]`, param: "input[0].type", msg: "unknown item type 'hologram'"},
		{in: `[{"role":"user","content":"x"},{"type":"image_generation_call"}]`, param: "input[1].type", msg: "'image_generation_call' is not supported"},
		{in: `[{"type":"message","role":"user","content":"x","status":"weird"}]`, param: "input[0].status", msg: "unknown value"},
		{in: `[{"type":"function_call","call_id":5,"name":"f","arguments":"{}"}]`, param: "input[0].call_id", msg: "must not be number"},
		{in: `[{"type":"mcp_approval_response","approval_request_id":"r"}]`, param: "input[0].approve", msg: "required"},
		{in: `[{"type":"reasoning","summary":[{"type":"output_text","text":"x"}]}]`, param: "input[0].summary[0].type", msg: "summary_text"},
		{in: `7`, param: "input", msg: "string or an array"},
		{in: `[7]`, param: "input[0]", msg: "must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DecodeInput(json.RawMessage(tt.in))
			if tt.param != "" {
				var e *Error
				if !errors.As(err, &e) || e.Status != 400 || e.Param != tt.param || !strings.Contains(e.Message, tt.msg) {
					t.Fatalf("err = %#v, want param %q message containing %q", err, tt.param, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestItemJSONShapes checks the members each item type is written with.
func TestItemJSONShapes(t *testing.T) {
	tests := []struct {
		it   Item
		want string
	}{
		{Item{Type: TypeMessage, ID: "msg_1", Role: "assistant", Status: "completed", Content: []Part{{Type: PartOutputText, Text: "hi"}}},
			`{"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"hi","annotations":[],"logprobs":[]}]}`},
		{Item{Type: TypeFunctionCall, ID: "fc_1", CallID: "call_1", Name: "f", Arguments: "{}", Status: "completed"},
			`{"id":"fc_1","type":"function_call","call_id":"call_1","name":"f","arguments":"{}","status":"completed"}`},
		{Item{Type: TypeReasoning, ID: "rs_1", Content: []Part{{Type: PartReasoningText, Text: "r"}}},
			`{"id":"rs_1","type":"reasoning","summary":[],"content":[{"type":"reasoning_text","text":"r"}]}`},
		{Item{Type: TypeMCPCall, ID: "mcp_1", ServerLabel: "s", Name: "t", Arguments: "{}", Status: "failed", Error: new("boom")},
			`{"id":"mcp_1","type":"mcp_call","server_label":"s","name":"t","arguments":"{}","output":null,"error":"boom","status":"failed","approval_request_id":null}`},
		{Item{Type: TypeMCPListTools, ID: "mcpl_1", ServerLabel: "s"},
			`{"id":"mcpl_1","type":"mcp_list_tools","server_label":"s","tools":[],"error":null}`},
		{Item{Type: TypeMCPApprovalRequest, ID: "mcpr_1", ServerLabel: "s", Name: "t", Arguments: "{}"},
			`{"id":"mcpr_1","type":"mcp_approval_request","server_label":"s","name":"t","arguments":"{}"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.it)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("got  %s\nwant %s", b, tt.want)
		}
	}
}

// FuzzDecodeInput checks that the decoder never panics, and that what it
// accepts survives encoding and decoding again unchanged.
func FuzzDecodeInput(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := DecodeInput(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
				t.Fatalf("error is not a 400 *Error: %#v", err)
			}
			return
		}
		enc, err := json.Marshal(items)
		if err != nil {
			t.Fatalf("encode accepted items: %v", err)
		}
		again, err := DecodeInput(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		enc2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(enc) != string(enc2) {
			t.Fatalf("not stable:\n%s\n%s", enc, enc2)
		}
	})
}
