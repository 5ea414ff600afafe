package o365mappingprocessor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// pseudonymizer replaces identifiers with hex(HMAC-SHA256(key, lower-case identifier))[:32]: stable for
// one key (records of one user stay linkable, correlation still works), not reversible without it.
// Identifiers are lower-cased first because UPNs and object ids are case-insensitive in Entra ID.
type pseudonymizer struct {
	pool sync.Pool
}

// pseudonymLength is the number of hex characters kept (128 bits).
const pseudonymLength = 32

func newPseudonymizer(key []byte) *pseudonymizer {
	k := append([]byte(nil), key...)
	return &pseudonymizer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

func (p *pseudonymizer) hash(s string) string {
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	_, _ = h.Write([]byte(strings.ToLower(s)))
	var sum [sha256.Size]byte
	out := h.Sum(sum[:0])
	p.pool.Put(h)
	return hex.EncodeToString(out[:pseudonymLength/2])
}
