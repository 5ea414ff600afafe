package graph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The two passes of FastDecoder over a page: parse validates it and indexes its records, the emitter
// copies a record into pdata. The emitter trusts what parse validated: it walks the same bytes without
// checking them again.

// maxDepth bounds the nesting of objects and arrays (the page object counts as one): the decoder
// recurses once per level, and a hostile page must not exhaust the stack.
const maxDepth = 1000

// interners reuse the key table between pages: Graph objects repeat the same property names.
var interners = sync.Pool{New: func() any { return &emitter{keys: map[string]string{}} }}

// emitter is the state of one Emit: the page, where it is in the page's container counts, the key
// table and a buffer for unescaping.
type emitter struct {
	body   []byte
	counts []uint32
	ci     int
	keys   map[string]string
	recent [256]string // the last key seen per keyHash: most lookups stop here, without hashing the key
	buf    []byte
}

// intern returns a string equal to b, shared with earlier equal keys.
func (e *emitter) intern(b []byte) string {
	h := keyHash(b)
	if s := e.recent[h]; s == string(b) {
		return s
	}
	s, ok := e.keys[string(b)]
	if !ok {
		s = validString(b)
		if len(e.keys) < 4096 { // bounded: a hostile page cannot grow it without limit
			e.keys[s] = s
		}
	}
	if s == string(b) { // not for a key whose invalid UTF-8 was replaced
		e.recent[h] = s
	}
	return s
}

// keyHash is a cheap hash of a key: its length and three of its bytes.
func keyHash(b []byte) uint8 {
	if len(b) == 0 {
		return 0
	}
	return uint8(len(b)*7) ^ b[0] ^ b[len(b)/2]<<1 ^ b[len(b)-1]<<3
}

// --- the validating pass ---

// parse validates the page and fills its index. Where a page has the same member twice, the first
// "value", "@odata.nextLink" and "@odata.context" count (the later ones are validated, not used).
func (pg *Page) parse() error {
	pb := pg.buf
	p := parser{body: pb.body, counts: pb.counts}
	defer func() { pb.counts = p.counts }()
	i := ws(p.body, 0)
	if i >= len(p.body) || p.body[i] != '{' {
		if end, err := p.value(i, 1); err != nil {
			return err
		} else if ws(p.body, end) < len(p.body) {
			return syntaxErr("trailing data after the page")
		}
		return errors.New("a page must be a JSON object")
	}
	var sawValue, sawNext, sawContext bool
	contextAt := -1
	ci := p.open()
	n := 0
	i = ws(p.body, i+1)
	if i < len(p.body) && p.body[i] == '}' {
		i++
	} else {
		for {
			ks, ke, esc, err := p.str(i)
			if err != nil {
				return err
			}
			key := p.body[ks:ke]
			if esc {
				key = unescape(nil, key)
			}
			i = ws(p.body, ke+1)
			if i >= len(p.body) || p.body[i] != ':' {
				return p.unexpected(i, "':' after an object key")
			}
			i = ws(p.body, i+1)
			switch k := string(key); {
			case k == "value" && !sawValue:
				sawValue = true
				if i, err = p.items(i, pb); err != nil {
					return err
				}
			case k == "@odata.nextLink" && !sawNext:
				sawNext = true
				if i < len(p.body) && p.body[i] == '"' {
					s, e, esc, err := p.str(i)
					if err != nil {
						return err
					}
					pg.nextLink = stringValue(p.body[s:e], esc)
					i = e + 1
					break
				}
				p.wrongShape(errors.New(`"@odata.nextLink" is not a string`))
				if i, err = p.value(i, 2); err != nil {
					return err
				}
			case k == "@odata.context" && !sawContext:
				sawContext = true
				contextAt = i
				if i, err = p.value(i, 2); err != nil {
					return err
				}
			default:
				if i, err = p.value(i, 2); err != nil {
					return err
				}
			}
			n++
			more := false
			if i, more, err = p.next(i, '}'); err != nil {
				return err
			} else if !more {
				break
			}
		}
	}
	p.counts[ci] = uint32(n)
	if i = ws(p.body, i); i < len(p.body) {
		return syntaxErr("trailing data after the page object")
	}
	if p.shape != nil {
		return p.shape
	}
	if !sawValue {
		return errNoValue
	}
	if pg.nextLink != "" && contextAt >= 0 && p.body[contextAt] == '"' {
		if u, err := url.Parse(pg.nextLink); err == nil && !u.IsAbs() {
			s, e, esc, _ := p.str(contextAt)
			pg.context = stringValue(p.body[s:e], esc)
		}
	}
	return nil
}

// parser validates JSON: objects, arrays, strings (escapes, surrogate pairs, no raw control
// characters), numbers (JSON's grammar, which strconv is looser than) and literals.
type parser struct {
	body   []byte
	counts []uint32
	shape  error // the first way the page, valid JSON so far, is not a Graph page: returned if it is valid
}

// wrongShape notes a way the page is not a Graph page; the rest is validated all the same, so that a
// page that is not valid JSON either fails as such.
func (p *parser) wrongShape(err error) {
	if p.shape == nil {
		p.shape = err
	}
}

// open reserves the count of a container that opens.
func (p *parser) open() int {
	p.counts = append(p.counts, 0)
	return len(p.counts) - 1
}

func (p *parser) unexpected(i int, want string) error {
	if i >= len(p.body) {
		return syntaxErr("unexpected end of page, expected %s", want)
	}
	return syntaxErr("unexpected %q at offset %d, expected %s", p.body[i], i, want)
}

// syntaxErr is the error of a page that is not valid JSON.
func syntaxErr(format string, a ...any) error {
	return fmt.Errorf("invalid page: "+format, a...)
}

// items validates the "value" array at i, recording its elements in pb.
func (p *parser) items(i int, pb *pageBuf) (int, error) {
	if i >= len(p.body) || p.body[i] != '[' {
		p.wrongShape(errors.New(`"value" is not an array`))
		return p.value(i, 2)
	}
	ci := p.open()
	pb.first = len(p.counts)
	n := 0
	i = ws(p.body, i+1)
	if i < len(p.body) && p.body[i] == ']' {
		return i + 1, nil
	}
	for {
		if i >= len(p.body) || p.body[i] != '{' {
			p.wrongShape(errors.New(`"value" element is not an object`))
		} else {
			pb.items = append(pb.items, i)
		}
		var err error
		if i, err = p.value(i, 3); err != nil {
			return 0, err
		}
		n++
		more := false
		if i, more, err = p.next(i, ']'); err != nil || !more {
			p.counts[ci] = uint32(n)
			return i, err
		}
	}
}

// value validates the value at i, at nesting depth (the containers it would be in, itself included if
// it is one), and returns the offset after it.
func (p *parser) value(i, depth int) (int, error) {
	if i >= len(p.body) {
		return 0, p.unexpected(i, "a value")
	}
	switch c := p.body[i]; c {
	case '"':
		_, e, _, err := p.str(i)
		return e + 1, err
	case '{', '[':
		if depth > maxDepth {
			return 0, syntaxErr("objects and arrays nested deeper than %d", maxDepth)
		}
		ci := p.open()
		n := 0
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		i = ws(p.body, i+1)
		if i < len(p.body) && p.body[i] == end {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				_, e, _, err := p.str(i)
				if err != nil {
					return 0, err
				}
				i = ws(p.body, e+1)
				if i >= len(p.body) || p.body[i] != ':' {
					return 0, p.unexpected(i, "':' after an object key")
				}
				i = ws(p.body, i+1)
			}
			if i, err = p.value(i, depth+1); err != nil {
				return 0, err
			}
			n++
			more := false
			if i, more, err = p.next(i, end); err != nil || !more {
				p.counts[ci] = uint32(n)
				return i, err
			}
		}
	case 't':
		return p.literal(i, "true")
	case 'f':
		return p.literal(i, "false")
	case 'n':
		return p.literal(i, "null")
	default:
		e := numberEnd(p.body, i)
		if _, ok := numberKind(p.body[i:e]); !ok || e == i {
			return 0, syntaxErr("invalid number %q at offset %d", p.body[i:max(e, i+1)], i)
		}
		return e, nil
	}
}

// next reads what follows a member of an object or an element of an array, at i: a comma (more is
// true and at is the next member) or end, the container's closing bracket (at is after it).
func (p *parser) next(i int, end byte) (at int, more bool, err error) {
	i = ws(p.body, i)
	switch {
	case i < len(p.body) && p.body[i] == ',':
		return ws(p.body, i+1), true, nil
	case i < len(p.body) && p.body[i] == end:
		return i + 1, false, nil
	}
	return 0, false, p.unexpected(i, fmt.Sprintf("',' or '%c'", end))
}

func (p *parser) literal(i int, lit string) (int, error) {
	if len(p.body)-i < len(lit) || string(p.body[i:i+len(lit)]) != lit {
		return 0, p.unexpected(i, lit)
	}
	return i + len(lit), nil
}

// str validates the string whose opening quote is at i and returns where its content starts and ends
// (the offset of the closing quote), and whether it has escape sequences.
func (p *parser) str(i int) (start, end int, escaped bool, err error) {
	if i >= len(p.body) || p.body[i] != '"' {
		return 0, 0, false, p.unexpected(i, "a string")
	}
	start = i + 1
	i = start
	for {
		i = stringSpecial(p.body, i)
		if i >= len(p.body) {
			return 0, 0, false, syntaxErr("unterminated string")
		}
		switch c := p.body[i]; {
		case c == '"':
			return start, i, escaped, nil
		case c == '\\':
			n, err := escapeLen(p.body, i)
			if err != nil {
				return 0, 0, false, syntaxErr("%w at offset %d", err, i)
			}
			escaped = true
			i += n
		default:
			return 0, 0, false, syntaxErr("control character in string at offset %d", i)
		}
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// stringSpecial returns the offset of the first byte from i that ends a run of plain string content —
// a quote, a backslash or a control character — or len(b), eight bytes at a time.
func stringSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		// A byte of the mask has its top bit set at the first byte below 0x20, or zero in q or bs
		// (the usual has-zero-byte trick: bytes after the first match may be flagged too, never before).
		m := ((x-lsb*0x20)&^x | (q-lsb)&^q | (bs-lsb)&^bs) & msb
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// quoteOrBackslash is stringSpecial for a valid string, which has no control characters to look for.
func quoteOrBackslash(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		if m := ((q-lsb)&^q | (bs-lsb)&^bs) & msb; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// escapeLen validates the escape sequence at body[i] and returns its length. \u escapes must encode
// surrogates in pairs: encoding/json would replace a lone one; a page refuses it.
func escapeLen(body []byte, i int) (int, error) {
	if i+1 >= len(body) {
		return 0, errors.New("truncated escape sequence")
	}
	switch body[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		return 0, fmt.Errorf("invalid escape sequence \\%c", body[i+1])
	}
	r, ok := hex4(body, i+2)
	switch {
	case !ok:
		return 0, errors.New("invalid \\u escape")
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, errors.New("lone surrogate in \\u escape")
	case r < 0xD800 || r > 0xDBFF:
		return 6, nil
	}
	low, ok := hex4(body, i+8)
	if i+7 >= len(body) || body[i+6] != '\\' || body[i+7] != 'u' || !ok || low < 0xDC00 || low > 0xDFFF {
		return 0, errors.New("lone surrogate in \\u escape")
	}
	return 12, nil
}

// hex4 reads the four hex digits at body[at:].
func hex4(body []byte, at int) (rune, bool) {
	if at < 0 || at+4 > len(body) {
		return 0, false
	}
	var r rune
	for _, c := range body[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// numberEnd returns the end of the run of bytes that may make up a number from i.
func numberEnd(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// numberKind checks raw against JSON's number grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
// and reports whether it is an integer literal.
func numberKind(raw []byte) (integer, ok bool) {
	i := 0
	if i < len(raw) && raw[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(raw) && raw[i] == '0':
		i++
	case digits() == 0:
		return false, false
	}
	integer = true
	if i < len(raw) && raw[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			return false, false
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		integer = false
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
	}
	return integer, i == len(raw)
}

// --- the emitting pass, over a page Parse validated ---

// object fills m with the object at i and returns the offset after it.
func (e *emitter) object(i int, m pcommon.Map) int {
	m.EnsureCapacity(int(e.counts[e.ci]))
	e.ci++
	i = ws(e.body, i+1)
	if e.body[i] == '}' {
		return i + 1
	}
	for {
		b, end := e.str(i)
		key := e.intern(b)
		i = ws(e.body, end+1) // ':'
		i = ws(e.body, i+1)   // the value
		i = ws(e.body, e.value(i, m.PutEmpty(key)))
		if e.body[i] == '}' {
			return i + 1
		}
		i = ws(e.body, i+1) // after ','
	}
}

// str returns the contents of the string at i, unescaped (into e.buf, valid until the next call),
// and the offset of its closing quote.
func (e *emitter) str(i int) ([]byte, int) {
	s, end, esc := skipString(e.body, i)
	if !esc {
		return e.body[s:end], end
	}
	e.buf = unescape(e.buf[:0], e.body[s:end])
	return e.buf, end
}

// value fills dst with the value at i and returns the offset after it.
func (e *emitter) value(i int, dst pcommon.Value) int {
	switch c := e.body[i]; c {
	case '"':
		b, end := e.str(i)
		dst.SetStr(validString(b))
		return end + 1
	case '{':
		return e.object(i, dst.SetEmptyMap())
	case '[':
		sl := dst.SetEmptySlice()
		sl.EnsureCapacity(int(e.counts[e.ci]))
		e.ci++
		i = ws(e.body, i+1)
		if e.body[i] == ']' {
			return i + 1
		}
		for {
			i = ws(e.body, e.value(i, sl.AppendEmpty()))
			if e.body[i] == ']' {
				return i + 1
			}
			i = ws(e.body, i+1)
		}
	case 't':
		dst.SetBool(true)
		return i + 4
	case 'f':
		dst.SetBool(false)
		return i + 5
	case 'n':
		// null stays an empty value: the key is kept, as Graph sent it
		return i + 4
	default:
		end := numberEnd(e.body, i)
		setNumber(dst, e.body[i:end])
		return end
	}
}

// skipString returns the content of the valid string at i and whether it has escape sequences.
func skipString(b []byte, i int) (start, end int, escaped bool) {
	start = i + 1
	for i = start; ; {
		i = quoteOrBackslash(b, i)
		if b[i] == '"' {
			return start, i, escaped
		}
		escaped = true
		i += 2 // a valid escape: \uXXXX has no special byte after its 'u'
	}
}

// skipValue returns the offset after the valid value at i.
func skipValue(b []byte, i int) int {
	depth := 0
	for {
		switch b[i] {
		case '"':
			_, end, _ := skipString(b, i)
			i = end + 1
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case ',', ':', ' ', '\t', '\n', '\r':
			i++
		default: // a number or a literal
			for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
				i++
			}
		}
		if depth == 0 {
			return i
		}
	}
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// unescape appends the content of a valid string with escape sequences to dst.
func unescape(dst, s []byte) []byte {
	for len(s) > 0 {
		j := 0
		for j < len(s) && s[j] != '\\' {
			j++
		}
		dst = append(dst, s[:j]...)
		if j == len(s) {
			break
		}
		s = s[j:]
		switch s[1] {
		case 'u':
			r, _ := hex4(s, 2)
			n := 6
			if r >= 0xD800 && r <= 0xDBFF {
				low, _ := hex4(s, 8)
				r = (r-0xD800)<<10 | (low - 0xDC00) + 0x10000
				n = 12
			}
			dst = utf8.AppendRune(dst, r)
			s = s[n:]
			continue
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		default: // " \ /
			dst = append(dst, s[1])
		}
		s = s[2:]
	}
	return dst
}

// stringValue is the Go string of valid string content, unescaped, invalid UTF-8 replaced.
func stringValue(b []byte, escaped bool) string {
	if escaped {
		b = unescape(nil, b)
	}
	return validString(b)
}

// validString copies b, replacing invalid UTF-8 as encoding/json does: pdata strings must be valid
// UTF-8 to be exported over OTLP.
func validString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r) // utf8.RuneError for each invalid byte, one by one
		b = b[size:]
	}
	return sb.String()
}

// setNumber keeps integer literals that fit int64 as Int (error codes, counts) and everything else
// as Double (out of range: ±Inf, as encoding/json's oracle). raw is a valid JSON number.
func setNumber(dst pcommon.Value, raw []byte) {
	integer := true
	for _, c := range raw {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer && len(raw) <= 18 { // up to 18 digits always fits int64
		neg := raw[0] == '-'
		if neg {
			raw = raw[1:]
		}
		var n int64
		for _, c := range raw {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		dst.SetInt(n)
		return
	}
	if integer { // not for a fraction or an exponent: ParseInt's error would allocate for nothing
		if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			dst.SetInt(i)
			return
		}
	}
	f, _ := strconv.ParseFloat(string(raw), 64)
	dst.SetDouble(f)
}
