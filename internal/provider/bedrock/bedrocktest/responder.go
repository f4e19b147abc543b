package bedrocktest

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Reply is the scripted model output for one request. Every one of the n
// choices of a response carries the same Reply.
type Reply struct {
	// Reasoning is the hidden reasoning; the double inlines it as
	// <reasoning>…</reasoning> before the answer. Empty means no reasoning.
	Reasoning string
	// Answer is the visible answer text.
	Answer string
	// ToolCall, when set, makes the choice a tool call (finish_reason
	// "tool_calls"); Answer is then normally empty.
	ToolCall *ToolCall
}

// ToolCall is a function call the model makes.
type ToolCall struct {
	// ID is the call id; empty means a fresh "chatcmpl-tool-<16 hex>" per choice.
	ID string
	// Name is the function name.
	Name string
	// Arguments is the JSON text of the arguments; empty means "{}".
	Arguments string
}

// LongAnswer is the answer of [DefaultResponder] to prompts about quantum
// computing: several sentences, well over 120 words, for tests that need a
// long stream.
const LongAnswer = "Quantum computing is a model of computation that uses the principles of quantum mechanics to process information. " +
	"Instead of classical bits, which are either zero or one, a quantum computer uses qubits, which can exist in a superposition of both states at once. " +
	"When several qubits are entangled, the state of the whole register cannot be described by looking at each qubit on its own, and this gives quantum algorithms access to a very large space of amplitudes. " +
	"Algorithms such as Shor's algorithm for factoring integers and Grover's algorithm for searching unstructured data show that, for some problems, a quantum computer could be dramatically faster than any known classical method. " +
	"In practice, today's machines are noisy and small, so researchers work on error correction, better qubit designs such as superconducting circuits, trapped ions and photonic systems, and on hybrid algorithms that split work between classical and quantum processors. " +
	"Many experts expect useful applications first in chemistry, materials science and optimisation, while large fault-tolerant machines are still some years away."

// rule is one prompt → answer line of the default script.
type rule struct {
	match  string
	answer string
}

var script = []rule{
	{"which planet do humans live on", "Humans live on **Earth**, the third planet from the Sun."},
	{"name of the sun in latin", "In Latin the Sun is called **Sol**."},
	{"what is my name", ""}, // answered from the conversation
	{"capital of france", "The capital of France is **Paris**."},
	{"2 + 2", "2 + 2 = 4."},
	{"romeo and juliet", "Romeo and Juliet was written by William Shakespeare."},
	{"haiku", "Code flows like rivers\nDebugging whispers in loops\nLogic blooms at dawn"},
	{"count to 5", "1, 2, 3, 4, 5"},
	{"weather", "Hark! The heavens doth weep upon the land this day."},
	{"read a json file", "```python\nimport json\nwith open('data.json') as f:\n    data = json.load(f)\n```"},
	{"hello", "Hello! How can I help you today?"},
	{"quantum computing", LongAnswer},
}

var myNameIs = regexp.MustCompile(`(?i)\bmy name is\s+(.+)`)

// DefaultResponder answers deterministically; custom responders may fall
// back to it. The reasoning is always
//
//	The user asks: "<last user message>". Answer directly.
//
// A tool call is made when the request declares tools, tool_choice is not
// "none", the last message is a user message, and either tool_choice names
// a function, or tool_choice is "required" (first tool unless one is
// mentioned), or the last user message mentions a tool (case-insensitive) by
// its name, by its name with "_" read as " ", or by that with a leading
// get/fetch/lookup/search/find verb removed ("get_boiling_point" matches
// "boiling point"). Arguments fill the schema's required properties: strings
// from the word after the last " in "/" of "/" for "/" at "/" about " (else
// the last word) or the first enum value, numbers from the first number in
// the message (else 0), booleans true, arrays [] and objects {}.
//
// When the last message is a tool result the answer is
// "The tool returned: <content>".
//
// Otherwise the last user message is matched, case-insensitively by
// substring and in this order, against: "which planet do humans live on",
// "name of the sun in latin", "what is my name" (answered "Your name is X."
// from the latest earlier user message saying "my name is X", else
// "I don't know your name."), "capital of france", "2 + 2",
// "romeo and juliet", "haiku", "count to 5", "weather", "read a json file",
// "hello" and "quantum computing" ([LongAnswer]); anything else is answered
// "You said: <message>".
func DefaultResponder(req *ChatRequest) Reply {
	last := req.lastUser()
	reasoning := `The user asks: "` + last + `". Answer directly.`
	if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == "tool" {
		return Reply{
			Reasoning: "The tool returned a result. Answer the user with it.",
			Answer:    "The tool returned: " + req.Messages[n-1].Text,
		}
	}
	if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == "user" {
		if tc := chooseTool(req, last); tc != nil {
			return Reply{Reasoning: reasoning, ToolCall: tc}
		}
	}
	lower := strings.ToLower(last)
	for _, r := range script {
		if !strings.Contains(lower, r.match) {
			continue
		}
		if r.match == "what is my name" {
			return Reply{Reasoning: reasoning, Answer: recallName(req)}
		}
		return Reply{Reasoning: reasoning, Answer: r.answer}
	}
	return Reply{Reasoning: reasoning, Answer: "You said: " + last}
}

// recallName finds "my name is X" in the user messages before the last one.
func recallName(req *ChatRequest) string {
	lastIdx := -1
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			lastIdx = i
			break
		}
	}
	for i := lastIdx - 1; i >= 0; i-- {
		m := req.Messages[i]
		if m.Role != "user" {
			continue
		}
		sub := myNameIs.FindAllStringSubmatch(m.Text, -1)
		if len(sub) == 0 {
			continue
		}
		if name := nameWords(sub[len(sub)-1][1]); name != "" {
			return "Your name is " + name + "."
		}
	}
	return "I don't know your name."
}

// nameWords takes the first word of s and the capitalised words after it,
// stopping at punctuation.
func nameWords(s string) string {
	var out []string
	for i, w := range strings.Fields(s) {
		stop := strings.IndexFunc(w, func(r rune) bool {
			return unicode.IsPunct(r) && r != '-' && r != '\''
		})
		word := w
		if stop >= 0 {
			word = w[:stop]
		}
		if word == "" {
			break
		}
		if i > 0 && !unicode.IsUpper([]rune(word)[0]) {
			break
		}
		out = append(out, word)
		if stop >= 0 {
			break
		}
	}
	return strings.Join(out, " ")
}

// chooseTool decides whether the default responder calls a tool.
func chooseTool(req *ChatRequest, last string) *ToolCall {
	tools := req.toolDecls()
	if len(tools) == 0 {
		return nil
	}
	var pick *toolDecl
	var choice string
	if len(req.ToolChoice) > 0 {
		var named struct {
			Type     string `json:"type"`
			Name     string `json:"name"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(req.ToolChoice, &choice) != nil && json.Unmarshal(req.ToolChoice, &named) == nil {
			name := named.Function.Name
			if name == "" {
				name = named.Name
			}
			for i := range tools {
				if tools[i].Name == name {
					pick = &tools[i]
				}
			}
		}
	}
	if choice == "none" {
		return nil
	}
	if pick == nil {
		pick = mentionedTool(tools, last)
	}
	if pick == nil && choice == "required" {
		pick = &tools[0]
	}
	if pick == nil {
		return nil
	}
	return &ToolCall{Name: pick.Name, Arguments: deriveArguments(pick.Parameters, last)}
}

func mentionedTool(tools []toolDecl, text string) *toolDecl {
	lower := strings.ToLower(text)
	for i := range tools {
		name := strings.ToLower(tools[i].Name)
		spaced := strings.TrimSpace(strings.NewReplacer("_", " ", "-", " ").Replace(name))
		cands := []string{name, spaced}
		for _, verb := range []string{"get ", "fetch ", "lookup ", "look up ", "search ", "find "} {
			if rest, ok := strings.CutPrefix(spaced, verb); ok && rest != "" {
				cands = append(cands, rest)
			}
		}
		for _, c := range cands {
			if c != "" && strings.Contains(lower, c) {
				return &tools[i]
			}
		}
	}
	return nil
}

var firstNumber = regexp.MustCompile(`-?\d+(\.\d+)?`)

// deriveArguments fills the required properties of a JSON schema from text.
func deriveArguments(schema json.RawMessage, text string) string {
	var s struct {
		Properties map[string]struct {
			Type    any   `json:"type"`
			Enum    []any `json:"enum"`
			Default any   `json:"default"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if len(schema) == 0 || json.Unmarshal(schema, &s) != nil || len(s.Required) == 0 {
		return "{}"
	}
	args := map[string]any{}
	req := append([]string(nil), s.Required...)
	sort.Strings(req)
	for _, name := range req {
		p := s.Properties[name]
		typ, _ := p.Type.(string)
		if list, ok := p.Type.([]any); ok && len(list) > 0 {
			typ, _ = list[0].(string)
		}
		switch {
		case len(p.Enum) > 0:
			args[name] = p.Enum[0]
		case p.Default != nil:
			args[name] = p.Default
		case typ == "integer":
			n, _ := strconv.Atoi(strings.Split(firstNumber.FindString(text), ".")[0])
			args[name] = n
		case typ == "number":
			f, _ := strconv.ParseFloat(firstNumber.FindString(text), 64)
			args[name] = f
		case typ == "boolean":
			args[name] = true
		case typ == "array":
			args[name] = []any{}
		case typ == "object":
			args[name] = map[string]any{}
		default:
			args[name] = subjectWord(text)
		}
	}
	b, err := marshal(args)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// subjectWord picks the word after the last " in ", " of ", " for ", " at "
// or " about " in text, else its last word, without punctuation.
func subjectWord(text string) string {
	words := strings.Fields(text)
	pick := ""
	for i := 0; i+1 < len(words); i++ {
		switch strings.ToLower(words[i]) {
		case "in", "of", "for", "at", "about":
			pick = words[i+1]
		}
	}
	if pick == "" && len(words) > 0 {
		pick = words[len(words)-1]
	}
	return strings.TrimFunc(pick, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}
