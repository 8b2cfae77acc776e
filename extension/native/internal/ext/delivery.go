package ext

import (
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// item is one Telemetry API record as the converter needs it.
type item struct {
	time    string
	hasTime bool
	kind    string
	recKind byte   // '"' string, '{' object, 'n' null or absent, 'v' any other JSON value
	recStr  string // the decoded string record
	recRaw  []byte // the raw JSON of any other record
}

// parseDelivery reads a delivery (a JSON array of records) by hand: the text-line path runs for
// every log line, and encoding/json's reflection cost as much as all the rest of the conversion.
// ok is false for anything it does not fully understand; the caller then uses encoding/json.
func parseDelivery(b []byte) (items []item, ok bool) {
	// Record strings are decoded into one arena per delivery (a decoded string is never longer
	// than its JSON form, so it never grows): one allocation instead of one per line. The
	// buffer copies each line into its slabs, after which the arena is garbage.
	s := scanner{b: b, arena: make([]byte, 0, len(b))}
	s.ws()
	if !s.eat('[') {
		return nil, false
	}
	items = make([]item, 0, 64)
	s.ws()
	if s.eat(']') {
		return items, s.end()
	}
	for {
		s.ws()
		it := item{recKind: 'n'}
		if s.peek() == '{' {
			if !s.object(&it) {
				return nil, false
			}
		} else if _, _, good := s.value(); !good {
			return nil, false
		}
		items = append(items, it)
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return items, s.end()
		}
		return nil, false
	}
}

type scanner struct {
	b []byte
	i int
	// The lines of one delivery mostly share their time and type: reuse the last string rather
	// than allocate one per record.
	lastTime, lastType string
	arena              []byte
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) object(it *item) bool {
	s.i++ // '{'
	it.recKind = 'n'
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.key()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		switch {
		case key == "time" && s.peek() == '"':
			if it.time, ok = s.strCached(&s.lastTime); !ok {
				return false
			}
			it.hasTime = true
		case key == "type" && s.peek() == '"':
			if it.kind, ok = s.strCached(&s.lastType); !ok {
				return false
			}
		case key == "record" && s.peek() == '"':
			if it.recStr, ok = s.strArena(); !ok {
				return false
			}
			it.recKind, it.recRaw = '"', nil
		default:
			start, end, good := s.value()
			if !good {
				return false
			}
			switch key {
			case "time":
				it.time, it.hasTime = "", false
			case "type":
				it.kind = ""
			case "record":
				raw := s.b[start:end]
				it.recStr = ""
				switch {
				case string(raw) == "null":
					it.recKind, it.recRaw = 'n', nil
				case raw[0] == '{':
					it.recKind, it.recRaw = '{', raw
				default:
					it.recKind, it.recRaw = 'v', raw
				}
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// value skips any JSON value, checking its syntax, and returns its span.
func (s *scanner) value() (int, int, bool) {
	start := s.i
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return start, s.i, ok
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		s.ws()
		if s.eat(closing) {
			return start, s.i, true
		}
		for {
			s.ws()
			if c == '{' {
				if _, ok := s.str(); !ok {
					return 0, 0, false
				}
				s.ws()
				if !s.eat(':') {
					return 0, 0, false
				}
				s.ws()
			}
			if _, _, ok := s.value(); !ok {
				return 0, 0, false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(closing) {
				return start, s.i, true
			}
			return 0, 0, false
		}
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return start, s.i, true
			}
		}
		return 0, 0, false
	case c == '-' || (c >= '0' && c <= '9'):
		s.i++
		for s.i < len(s.b) {
			d := s.b[s.i]
			if (d >= '0' && d <= '9') || d == '.' || d == 'e' || d == 'E' || d == '+' || d == '-' {
				s.i++
				continue
			}
			break
		}
		return start, s.i, json.Valid(s.b[start:s.i])
	}
	return 0, 0, false
}

// key reads an object key without allocating when it has no escapes (the result is only
// compared, never kept).
func (s *scanner) key() (string, bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		for j := s.i + 1; j < len(s.b); j++ {
			c := s.b[j]
			if c == '"' {
				k := unsafe.String(unsafe.SliceData(s.b[s.i+1:j]), j-s.i-1)
				s.i = j + 1
				return k, true
			}
			if c == '\\' || c < 0x20 {
				break
			}
		}
	}
	return s.str()
}

// strArena reads a string into the delivery's arena; the string is a view of the arena.
func (s *scanner) strArena() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	start := len(s.arena)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			n := len(s.arena) - start
			if n == 0 {
				return "", true
			}
			return unsafe.String(&s.arena[start], n), true
		case c < 0x20:
			return "", false
		case c != '\\':
			// copy the run up to the next quote or backslash at once
			j := s.i + 1
			for j < len(s.b) && s.b[j] != '"' && s.b[j] != '\\' && s.b[j] >= 0x20 {
				j++
			}
			s.arena = append(s.arena, s.b[s.i:j]...)
			s.i = j
			continue
		}
		if !s.escape(&s.arena) {
			return "", false
		}
	}
	return "", false
}

// strCached is str, returning *last when the string has the same bytes.
func (s *scanner) strCached(last *string) (string, bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		end := s.i + 1 + len(*last)
		if end < len(s.b) && s.b[end] == '"' && string(s.b[s.i+1:end]) == *last {
			s.i = end + 1
			return *last, true
		}
	}
	v, ok := s.str()
	if ok && !strings.ContainsAny(v, `\"`) { // raw bytes equal to v then mean v itself
		*last = v
	}
	return v, ok
}

// str reads a JSON string; the result never aliases the delivery's bytes.
func (s *scanner) str() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			out := string(s.b[start:s.i])
			s.i++
			return out, true
		}
		if c == '\\' {
			return s.strSlow(start)
		}
		if c < 0x20 {
			return "", false
		}
		s.i++
	}
	return "", false
}

func (s *scanner) strSlow(start int) (string, bool) {
	out := make([]byte, 0, s.i-start+64)
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if !s.escape(&out) {
			return "", false
		}
	}
	return "", false
}

// escape decodes the escape sequence at s.i (a backslash) onto *out.
func (s *scanner) escape(out *[]byte) bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	e := s.b[s.i+1]
	s.i += 2
	switch e {
	case '"', '\\', '/':
		*out = append(*out, e)
	case 'b':
		*out = append(*out, '\b')
	case 'f':
		*out = append(*out, '\f')
	case 'n':
		*out = append(*out, '\n')
	case 'r':
		*out = append(*out, '\r')
	case 't':
		*out = append(*out, '\t')
	case 'u':
		r, ok := s.hex4()
		if !ok {
			return false
		}
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				save := s.i
				s.i += 2
				if v, ok := s.hex4(); ok {
					r2 = v
				} else {
					s.i = save
				}
			}
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				r = dec
			} else {
				// A lone surrogate: encoding/json writes U+FFFD too.
				*out = utf8.AppendRune(*out, utf8.RuneError)
				if r2 < 0 {
					return true
				}
				r = r2
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
		}
		*out = utf8.AppendRune(*out, r)
	default:
		return false
	}
	return true
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}
