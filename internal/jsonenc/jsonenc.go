// Package jsonenc appends JSON values to byte slices by hand, for the hot paths where encoding/json's
// reflection costs more than the work itself.
package jsonenc

import (
	"encoding/binary"
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
