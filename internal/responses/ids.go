package responses

import (
	"crypto/rand"
	"encoding/hex"
)

// Id prefixes, as OpenAI uses them.
const (
	prefixResponse      = "resp_"
	prefixConversation  = "conv_"
	prefixMessage       = "msg_"
	prefixFunctionCall  = "fc_"
	prefixCallOutput    = "fco_"
	prefixReasoning     = "rs_"
	prefixMCPCall       = "mcp_"
	prefixMCPListTools  = "mcpl_"
	prefixMCPApproval   = "mcpr_"
	prefixMCPApprovalRe = "mcpa_"
	prefixCallID        = "call_"
)

// newID returns prefix followed by 48 random hex digits.
func newID(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newCallID returns a fresh call id: "call_" and 24 hex digits, short
// enough for every upstream's tool-call id limits.
func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefixCallID + hex.EncodeToString(b[:])
}

// itemPrefix is the id prefix of an item type.
func itemPrefix(typ string) string {
	switch typ {
	case TypeFunctionCall:
		return prefixFunctionCall
	case TypeFunctionCallOutput:
		return prefixCallOutput
	case TypeReasoning:
		return prefixReasoning
	case TypeMCPCall:
		return prefixMCPCall
	case TypeMCPListTools:
		return prefixMCPListTools
	case TypeMCPApprovalRequest:
		return prefixMCPApproval
	case TypeMCPApprovalResponse:
		return prefixMCPApprovalRe
	default:
		return prefixMessage
	}
}

// validConversationID reports whether id has the conv_ + 48 hex shape.
func validConversationID(id string) bool {
	const n = len(prefixConversation) + 48
	if len(id) != n || id[:len(prefixConversation)] != prefixConversation {
		return false
	}
	for _, c := range id[len(prefixConversation):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
