package graph

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// PageDecoder decodes a Graph collection page, `{"@odata.context":…,"value":[…],"@odata.nextLink":…}`,
// straight into pdata maps: every property of every object, unknown ones included, with integers kept as
// integers and nulls kept as empty values.
type PageDecoder interface {
	// Decode calls next once per element of "value" and fills the map it returns with the element.
	// It returns the page's @odata.nextLink ("" on the last page). A page without "value", with
	// trailing data, or cut short is an error. The maps must not retain body: its buffer is reused.
	Decode(body []byte, next func() pcommon.Map) (nextLink string, err error)
}

var errNoValue = errors.New(`page has no "value" array`)

// FastDecoder is the receiver's PageDecoder: fastjson parses the page into a reusable arena (validating
// it whole, so a truncated page fails before anything is emitted), then each value is copied once into
// its pdata map — maps pre-sized to their member count, keys interned across the page, no
// map[string]any and no reflection. Tests and a fuzz target check it decodes exactly like the
// encoding/json oracle.
type FastDecoder struct{}

var parsers fastjson.ParserPool

// interners reuse the key table between pages: Graph objects repeat the same property names.
var interners = sync.Pool{New: func() any { return &interner{m: map[string]string{}} }}

type interner struct{ m map[string]string }

// intern returns a string equal to b, shared with earlier equal keys.
func (in *interner) intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := validString(b)
	if len(in.m) < 4096 { // bounded: a hostile page cannot grow it without limit
		in.m[s] = s
	}
	return s
}

// Page is a parsed, validated page whose records are not yet copied into pdata. It keeps a copy of its
// body: a page that waits for its turn can be parked — its parse tree dropped, since fastjson's arena
// takes about four times the body — and is parsed again when it is emitted.
type Page struct {
	parser   *fastjson.Parser // nil while parked
	items    []*fastjson.Value
	n        int
	nextLink string
	context  string // @odata.context, kept only when nextLink is relative (the base it resolves against)
	body     *[]byte
}

// bodies recycles the pages' body copies.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// parseSlots bounds the pages that hold a parse tree at once to the CPUs that can parse them: the
// parsers cycling through their pool keep their arenas, each about four times a page's body. A page
// holds a slot from Parse (or Emit, for a parked page) until Park or Release — never while it waits.
var parseSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// Parse validates body as a Graph page and parses it from a copy of its own: body may be reused as
// soon as Parse returns.
func (FastDecoder) Parse(body []byte) (*Page, error) {
	if err := checkStrings(body); err != nil {
		return nil, fmt.Errorf("invalid page: %w", err)
	}
	parseSlots <- struct{}{}
	pg := &Page{parser: parsers.Get(), body: bodies.Get().(*[]byte)}
	*pg.body = append((*pg.body)[:0], body...)
	if err := pg.parse(); err != nil {
		pg.Release()
		return nil, err
	}
	return pg, nil
}

func (pg *Page) parse() error {
	root, err := pg.parser.ParseBytes(*pg.body)
	if err != nil {
		return fmt.Errorf("invalid page: %w", err)
	}
	page, err := root.Object()
	if err != nil {
		return errors.New("a page must be a JSON object")
	}
	value := page.Get("value")
	if value == nil {
		return errNoValue
	}
	if pg.items, err = value.Array(); err != nil {
		return errors.New(`"value" is not an array`)
	}
	for _, item := range pg.items {
		if item.Type() != fastjson.TypeObject {
			return errors.New(`"value" element is not an object`)
		}
	}
	pg.n = len(pg.items)
	if nl := page.Get("@odata.nextLink"); nl != nil {
		b, err := nl.StringBytes()
		if err != nil {
			return errors.New(`"@odata.nextLink" is not a string`)
		}
		pg.nextLink = validString(b)
		if u, err := url.Parse(pg.nextLink); err == nil && !u.IsAbs() {
			pg.context = validString(root.GetStringBytes("@odata.context"))
		}
	}
	return nil
}

// Park drops the parse tree of a page that waits for its turn, keeping its body: Emit parses it
// again. TimeSpan needs the tree: call it before.
func (pg *Page) Park() {
	if pg.parser != nil {
		parsers.Put(pg.parser)
		pg.parser, pg.items = nil, nil
		<-parseSlots
	}
}

// NextLink is the page's @odata.nextLink ("" on the last page), as written.
func (pg *Page) NextLink() string { return pg.nextLink }

// NextURL is the page's @odata.nextLink as an absolute URL ("" on the last page). Graph writes absolute
// links, but OData lets a payload's URLs be relative — to the context URL (@odata.context), or without
// one to the request's URL (OData JSON Format 4.01, "Relative URLs") — so a relative one is resolved
// rather than refused. Either way the result must pass the client's origin check before it is followed.
func (pg *Page) NextURL(requestURL string) string {
	ref, err := url.Parse(pg.nextLink)
	if pg.nextLink == "" || err != nil || ref.IsAbs() {
		return pg.nextLink
	}
	base, err := url.Parse(pg.context)
	if err != nil || !base.IsAbs() {
		if base, err = url.Parse(requestURL); err != nil {
			return pg.nextLink
		}
	}
	return base.ResolveReference(ref).String()
}

// Len is the number of records on the page.
func (pg *Page) Len() int { return pg.n }

// Emit copies every record into the map next returns, then releases the page.
func (pg *Page) Emit(next func() pcommon.Map) error {
	defer pg.Release()
	if pg.parser == nil { // parked: the body was validated when it was first parsed
		parseSlots <- struct{}{}
		pg.parser = parsers.Get()
		if err := pg.parse(); err != nil {
			return err
		}
	}
	in := interners.Get().(*interner)
	defer interners.Put(in)
	for _, item := range pg.items {
		obj, _ := item.Object()
		if err := copyObject(in, obj, next()); err != nil {
			return fmt.Errorf("invalid page: %w", err)
		}
	}
	return nil
}

// Release returns the parser and the body to their pools; the page is unusable afterwards.
func (pg *Page) Release() {
	pg.Park()
	if pg.body != nil {
		bodies.Put(pg.body)
		pg.body = nil
	}
}

// Decode parses and emits a page in one step (PageDecoder).
func (d FastDecoder) Decode(body []byte, next func() pcommon.Map) (string, error) {
	pg, err := d.Parse(body)
	if err != nil {
		return "", err
	}
	return pg.nextLink, pg.Emit(next)
}

// checkStrings enforces what fastjson leaves unchecked inside strings: escape sequences (\u escapes
// with surrogates in pairs) and no raw control characters. Outside strings a quote is the only byte
// that matters (anything else invalid there, fastjson rejects), so the scan jumps from string to string.
func checkStrings(body []byte) error {
	i := 0
	for {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return nil
		}
		i += j + 1
	inString:
		for {
			for i < len(body) && !stringSpecial[body[i]] {
				i++
			}
			if i >= len(body) {
				return nil // unterminated: fastjson rejects the page
			}
			switch c := body[i]; {
			case c == '"':
				i++
				break inString
			case c == '\\':
				n, err := escapeLen(body, i)
				if err != nil {
					return err
				}
				i += n
			default:
				return errors.New("control character in string")
			}
		}
	}
}

// stringSpecial marks the bytes that end a run of plain string content: quote, backslash, controls.
var stringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// escapeLen validates the escape sequence at body[i] and returns its length.
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
	// A high surrogate must be followed by a low one; fastjson would keep a lone one literally.
	low, ok := hex4(body, i+8)
	if i+7 >= len(body) || body[i+6] != '\\' || body[i+7] != 'u' || !ok || low < 0xDC00 || low > 0xDFFF {
		return 0, errors.New("lone surrogate in \\u escape")
	}
	return 12, nil
}

// hex4 reads the four hex digits at body[at:].
func hex4(body []byte, at int) (rune, bool) {
	if at+4 > len(body) {
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

func copyObject(in *interner, obj *fastjson.Object, m pcommon.Map) error {
	m.EnsureCapacity(obj.Len())
	var err error
	obj.Visit(func(key []byte, v *fastjson.Value) {
		if err == nil {
			err = copyValue(in, v, m.PutEmpty(in.intern(key)))
		}
	})
	return err
}

func copyValue(in *interner, v *fastjson.Value, dst pcommon.Value) error {
	switch v.Type() {
	case fastjson.TypeString:
		dst.SetStr(validString(v.GetStringBytes()))
	case fastjson.TypeNumber:
		return setNumber(dst, v)
	case fastjson.TypeTrue:
		dst.SetBool(true)
	case fastjson.TypeFalse:
		dst.SetBool(false)
	case fastjson.TypeObject:
		o, _ := v.Object()
		return copyObject(in, o, dst.SetEmptyMap())
	case fastjson.TypeArray:
		a, _ := v.Array()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(a))
		for _, e := range a {
			if err := copyValue(in, e, s.AppendEmpty()); err != nil {
				return err
			}
		}
	case fastjson.TypeNull:
		// null stays an empty value: the key is kept, as Graph sent it
	}
	return nil
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
// as Double. fastjson does not validate numbers, so the literal is checked against JSON's grammar here.
func setNumber(dst pcommon.Value, v *fastjson.Value) error {
	var buf [32]byte
	raw := v.MarshalTo(buf[:0])
	integer, ok := numberKind(raw)
	if !ok {
		return fmt.Errorf("invalid number %q", raw)
	}
	if integer && len(raw) <= 18 { // up to 18 digits always fits int64
		dst.SetInt(v.GetInt64())
		return nil
	}
	if i, err := strconv.ParseInt(string(raw), 10, 64); integer && err == nil {
		dst.SetInt(i)
		return nil
	}
	f, _ := strconv.ParseFloat(string(raw), 64) // out of range: ±Inf, as encoding/json's oracle
	dst.SetDouble(f)
	return nil
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

// StringField returns the string field of record i ("" when absent, not a string, or the page has no
// parse tree).
func (pg *Page) StringField(i int, field string) string {
	if i < 0 || i >= len(pg.items) {
		return ""
	}
	return string(pg.items[i].GetStringBytes(field))
}

// TimeSpan is what a page's records say about one of their time fields.
type TimeSpan struct {
	Oldest, Newest time.Time
	// Ascending: every record carries the field and none is earlier than the one before it (a page
	// whose records share one time is ascending too). Graph's $orderby is a request: this is what the
	// page shows of it.
	Ascending bool
	// Descending: every record carries the field and none is later than the one before it.
	Descending bool
}

// TimeSpan reads an RFC 3339 time field of the page's records.
func (pg *Page) TimeSpan(field string) TimeSpan {
	ts := TimeSpan{Ascending: true, Descending: true}
	var prev time.Time
	for i, item := range pg.items {
		at, err := time.Parse(time.RFC3339Nano, string(item.GetStringBytes(field)))
		if err != nil {
			ts.Ascending, ts.Descending = false, false
			continue
		}
		if ts.Oldest.IsZero() || at.Before(ts.Oldest) {
			ts.Oldest = at
		}
		if at.After(ts.Newest) {
			ts.Newest = at
		}
		if i > 0 && at.Before(prev) {
			ts.Ascending = false
		}
		if i > 0 && at.After(prev) {
			ts.Descending = false
		}
		prev = at
	}
	return ts
}
