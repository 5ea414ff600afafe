package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// StdDecoder decodes pages with encoding/json's tokenizer: the slow, obviously-correct oracle that
// FastDecoder is checked against (TestDecodersAgree, FuzzDecodePage).
type StdDecoder struct{}

func (StdDecoder) Decode(body []byte, next func() pcommon.Map) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return "", err
	}
	var nextLink string
	sawValue := false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch key {
		case "value":
			sawValue = true
			if err := expectDelim(dec, '['); err != nil {
				return "", fmt.Errorf(`"value": %w`, err)
			}
			for dec.More() {
				if err := expectDelim(dec, '{'); err != nil {
					return "", fmt.Errorf(`"value" element: %w`, err)
				}
				if err := decodeObject(dec, next()); err != nil {
					return "", err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return "", err
			}
		case "@odata.nextLink":
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			s, ok := tok.(string)
			if !ok {
				return "", errors.New(`"@odata.nextLink" is not a string`)
			}
			nextLink = s
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("trailing data after the page object")
	}
	if !sawValue {
		return "", errNoValue
	}
	return nextLink, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// decodeObject fills m with the members of an object whose '{' has been read.
func decodeObject(dec *json.Decoder, m pcommon.Map) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("expected an object key, found %v", tok)
		}
		if err := decodeValue(dec, m.PutEmpty(key)); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func decodeValue(dec *json.Decoder, v pcommon.Value) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return decodeObject(dec, v.SetEmptyMap())
		case '[':
			s := v.SetEmptySlice()
			for dec.More() {
				if err := decodeValue(dec, s.AppendEmpty()); err != nil {
					return err
				}
			}
			return expectDelim(dec, ']')
		default:
			return fmt.Errorf("unexpected %q", t)
		}
	case string:
		v.SetStr(t)
	case json.Number:
		stdSetNumber(v, string(t))
	case bool:
		v.SetBool(t)
	case nil:
		// null stays an empty value: the key is kept, as Graph sent it
	}
	return nil
}

// setNumber keeps integers as Int (error codes, counts) and everything else as Double.
func stdSetNumber(v pcommon.Value, s string) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		v.SetInt(i)
		return
	}
	f, _ := strconv.ParseFloat(s, 64)
	v.SetDouble(f)
}
