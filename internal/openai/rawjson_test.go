package openai

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestSetTopLevelString(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"replace", `{"model":"a","x":1}`, `{"model":"b/c:0","x":1}`, false},
		{"keeps order and spacing", `{ "x" : [1,{"model":"n"}] , "model" : "a" }`, `{ "x" : [1,{"model":"n"}] , "model" : "b/c:0" }`, false},
		{"absent", `{"x":1}`, `{"model":"b/c:0","x":1}`, false},
		{"empty object", `{}`, `{"model":"b/c:0"}`, false},
		{"escaped key", `{"mod\u0065l":"a"}`, `{"mod\u0065l":"b/c:0"}`, false},
		{"non-string value", `{"model":null}`, `{"model":"b/c:0"}`, false},
		{"string with braces", `{"a":"}{\"","model":"a"}`, `{"a":"}{\"","model":"b/c:0"}`, false},
		{"not object", `[1]`, ``, true},
		{"truncated", `{"model":"a`, ``, true},
		{"garbage", `{"model" "a"}`, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetTopLevelString([]byte(tt.in), "model", "b/c:0")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %s, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzSetTopLevelString checks the byte-level rewrite against a decode,
// set and compare through a map, for every valid object the fuzzer finds.
func FuzzSetTopLevelString(f *testing.F) {
	for _, s := range []string{`{"model":"a","messages":[{"role":"user","content":"hi"}]}`, `{}`, `{"a":{"model":1},"b":"\\\""}`, ` {"x" : true } `} {
		f.Add([]byte(s), "b")
	}
	f.Fuzz(func(t *testing.T, in []byte, value string) {
		got, err := SetTopLevelString(in, "model", value)
		var m map[string]any
		if json.Unmarshal(in, &m) != nil {
			return // invalid input: any error is fine, a panic is not
		}
		if err != nil {
			// Duplicate keys or other valid-but-unusual JSON never fail.
			t.Fatalf("valid object %q: %v", in, err)
		}
		var after map[string]any
		if err := json.Unmarshal(got, &after); err != nil {
			t.Fatalf("result %q is not JSON: %v", got, err)
		}
		if !json.Valid([]byte(`"`+value+`"`)) && after["model"] != value {
			// Values are encoded by encoding/json, which replaces invalid UTF-8.
			return
		}
		m["model"] = after["model"]
		if !reflect.DeepEqual(m, after) {
			t.Fatalf("rewrite changed other members: %v vs %v", m, after)
		}
	})
}

func TestRepairSingleQuotes(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`{"model": 'bedrock/openai.gpt-oss-20b-1:0', "n": 1}`, `{"model": "bedrock/openai.gpt-oss-20b-1:0", "n": 1}`, true},
		{`{'a': 'it\'s "x"'}`, `{"a": "it's \"x\""}`, true},
		{`{"a": "don't"}`, ``, false}, // valid JSON with a quote inside: nothing to repair
		{`{"a": 'open}`, ``, false},
		{`{"a": 'x' 'y'}`, ``, false},
	}
	for _, tt := range tests {
		got, ok := RepairSingleQuotes([]byte(tt.in))
		if ok != tt.ok || (ok && string(got) != tt.want) {
			t.Errorf("RepairSingleQuotes(%s) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzRepairSingleQuotes: never panics, and a repair is always valid JSON.
func FuzzRepairSingleQuotes(f *testing.F) {
	f.Add([]byte(`{"model": 'x', "messages": [{'role': 'user'}]}`))
	f.Add([]byte(`{'a\'b': "c\\"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, ok := RepairSingleQuotes(in)
		if ok && !json.Valid(out) {
			t.Fatalf("repair of %q is not JSON: %q", in, out)
		}
	})
}

// FuzzTopLevel checks TopLevel against a decode into a map: for a valid
// object without duplicate keys, the member it returns decodes to the
// map's value, and it finds the member exactly when the map has it.
func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{`{"model":"a","messages":[{"role":"user","content":"hi"}]}`, `{}`, `{"a":{"messages":1},"messages":"\\\""}`, ` {"messages" : [] } `, `[]`, `{"x":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := TopLevel(in, "messages")
		var m map[string]json.RawMessage
		if json.Unmarshal(in, &m) != nil {
			return
		}
		var keys map[string]any
		_ = json.Unmarshal(in, &keys)
		want, has := m["messages"]
		if bytes.Count(in, []byte(`"messages"`)) > 1 {
			return // duplicate keys: encoding/json keeps the last, TopLevel the first
		}
		if ok != has {
			t.Fatalf("TopLevel found=%v, decode found=%v in %q", ok, has, in)
		}
		if ok {
			var a, b any
			if json.Unmarshal(got, &a) != nil || json.Unmarshal(want, &b) != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("TopLevel = %q, decode = %q", got, want)
			}
		}
	})
}

// skipStringByByte is the byte-at-a-time scan skipString replaced: a
// backslash skips the next byte, a quote ends the string.
func skipStringByByte(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errNotObject
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errNotObject
}

// FuzzSkipString checks skipString against the byte-at-a-time scan on
// every input and start.
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"a\\"b"`, `"a\\\"b"`, `"\\\\"`, `"abc\`, `"abc\"`, `x"a"`, `""`, `"`} {
		f.Add([]byte(s), 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, i int) {
		if i < 0 || i > len(b) {
			return
		}
		got, gerr := skipString(b, i)
		want, werr := skipStringByByte(b, i)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("skipString(%q, %d) = %d, %v; byte scan %d, %v", b, i, got, gerr, want, werr)
		}
	})
}
