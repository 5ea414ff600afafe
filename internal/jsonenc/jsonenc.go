// Package jsonenc appends JSON values to byte slices by hand, for the hot paths where encoding/json's
// reflection costs more than the work itself.
package jsonenc

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Word-at-a-time tests on 8 bytes: lows is 0x01 in every byte, highs 0x80.
const (
	lows  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether the 8 bytes of x are all printable ASCII other than '"' and '\\', the bytes
// AppendString copies as they are: none below 0x20, none with the high bit, none equal to either.
func plain8(x uint64) bool {
	below := (x - lows*0x20) &^ x // a byte below 0x20 (and not above 0x7f) sets its high bit
	quote, backslash := x^(lows*'"'), x^(lows*'\\')
	zero := (quote-lows)&^quote | (backslash-lows)&^backslash // a byte equal to either becomes 0
	return (below|zero|x)&highs == 0
}

// AppendString appends s as a JSON string: quotes, backslashes and control characters escaped, invalid
// UTF-8 replaced by U+FFFD (as encoding/json does), everything else as is. Runs of plain ASCII, most of
// what Graph sends, are skipped 8 bytes at a time.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendStringAsMarshal appends s byte for byte as json.Marshal writes it, for texts that must stay
// what encoding/json made. That is AppendString's output unless s holds a byte that encoding/json
// escapes otherwise ('<', '>' and '&' for HTML safety, U+2028 and U+2029, '\b' and '\f' in their
// short forms, invalid UTF-8 as the escape \ufffd): such strings, rare in Graph's data, go through
// json.Marshal itself.
func AppendStringAsMarshal(b []byte, s string) []byte {
	if !marshalDiffers(s) {
		return AppendString(b, s)
	}
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// marshalDiffers reports whether json.Marshal writes s otherwise than AppendString.
func marshalDiffers(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<' || c == '>' || c == '&' || c == '\b' || c == '\f':
			return true
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return !ascii && (!utf8.ValidString(s) || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029"))
}
