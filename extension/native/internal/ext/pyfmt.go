package ext

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pyRepr renders a string the way Python's repr() does, so that the problem messages are
// word for word those of the Python build ("got 'abc'").
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\udc%02x", s[i]) // Python's surrogateescape rendering of a bad byte
			i++
			continue
		}
		i += n
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r >= 0x80 && !unicode.IsPrint(r):
			switch {
			case r < 0x100:
				fmt.Fprintf(&b, "\\x%02x", r)
			case r < 0x10000:
				fmt.Fprintf(&b, "\\u%04x", r)
			default:
				fmt.Fprintf(&b, "\\U%08x", r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// pyTypeName is Python's type(value).__name__ for a decoded JSON value (UseNumber).
func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case json.Number:
		if isIntLiteral(string(x)) {
			return "int"
		}
		return "float"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	}
	return "object"
}

func isIntLiteral(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".eE")
}

// pyNumber renders a JSON number as Python's str() of json.loads would.
func pyNumber(n json.Number) string {
	s := string(n)
	if isIntLiteral(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return pyFloat(f)
}

// pyFloat is Python's repr of a float: shortest round-trip digits, ".0" for integral values,
// exponent form outside 1e-4 <= |f| < 1e16.
func pyFloat(f float64) string {
	a := f
	if a < 0 {
		a = -a
	}
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+06, Python e+16 / e-05: both use at least two exponent digits.
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyStr is Python's str() of a decoded JSON value (f-string rendering).
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	case json.Number:
		return pyNumber(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// pyJSON re-renders a JSON value as Python's json.dumps(value, ensure_ascii=False) with the given
// separators does: keys in their order, strings re-escaped the Python way ("\u00e9" becomes é),
// numbers as Python prints them (2.50 -> 2.5). ok is false for text that is not JSON.
func pyJSON(raw []byte, itemSep, keySep string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b []byte
	var write func() bool
	write = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			closing := byte(']')
			if v == '{' {
				closing = '}'
			}
			b = append(b, byte(v))
			first := true
			for dec.More() {
				if !first {
					b = append(b, itemSep...)
				}
				first = false
				if v == '{' {
					kt, err := dec.Token()
					if err != nil {
						return false
					}
					k, _ := kt.(string)
					b = appendJSONString(b, k)
					b = append(b, keySep...)
				}
				if !write() {
					return false
				}
			}
			if _, err := dec.Token(); err != nil {
				return false
			}
			b = append(b, closing)
		case string:
			b = appendJSONString(b, v)
		case json.Number:
			s := pyNumber(v)
			if f, err := v.Float64(); err != nil && !isIntLiteral(string(v)) {
				if f > 0 {
					s = "Infinity"
				} else if f < 0 {
					s = "-Infinity"
				}
			}
			b = append(b, s...)
		case bool:
			if v {
				b = append(b, "true"...)
			} else {
				b = append(b, "false"...)
			}
		case nil:
			b = append(b, "null"...)
		}
		return true
	}
	if !write() {
		return "", false
	}
	return string(b), true
}
