package ingest

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kindAbsent kind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	case kindObject:
		return "object"
	}
	return "nothing"
}

// maxDepth is the deepest nesting accepted, the same limit encoding/json
// applies, so that both accept the same documents.
const maxDepth = 10000

// scanner is a validating JSON lexer over b. It never allocates on valid
// input: strings and numbers are returned as sub-slices of b, and decoding
// (unescaping) is left to the caller, who only does it for values it keeps.
//
// Offsets are absolute positions in b; a scanner confined to one line of a
// body is given b = body[:endOfLine] and i = startOfLine.
type scanner struct {
	b     []byte
	i     int
	depth int
	// err describes the first syntax error and errAt where it was found.
	err   string
	errAt int
	// key is scratch space for object keys that hold escapes.
	key []byte
}

// reset points s at b[i:], keeping its scratch buffer.
func (s *scanner) reset(b []byte, i int) {
	s.b, s.i, s.depth, s.err, s.errAt = b, i, 0, "", 0
}

func (s *scanner) fail(msg string) bool {
	if s.err == "" {
		s.err, s.errAt = msg, s.i
	}
	return false
}

func (s *scanner) eof() bool { return s.fail("unexpected end of input") }

// unexpected reports the byte at s.i as out of place; where says what the
// scanner was looking for.
func (s *scanner) unexpected(where string) bool {
	if s.i >= len(s.b) {
		return s.eof()
	}
	return s.fail(fmt.Sprintf("invalid character %s %s", quoteByte(s.b[s.i]), where))
}

// syntaxError is the message for s's error.
func (s *scanner) syntaxError() string {
	return fmt.Sprintf("malformed JSON at byte %d: %s", s.errAt, s.err)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("0x%02x", c)
}

func (s *scanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// atEnd reports whether only whitespace remains.
func (s *scanner) atEnd() bool {
	s.skipWS()
	return s.i == len(s.b)
}

// value scans any JSON value at s.i. For strings raw is the text between
// the quotes and esc reports whether it needs decoding (it holds escapes or
// non-ASCII bytes); for numbers raw is the number's text.
func (s *scanner) value() (k kind, raw []byte, esc, ok bool) {
	if s.i >= len(s.b) {
		return kindAbsent, nil, false, s.eof()
	}
	switch c := s.b[s.i]; c {
	case '"':
		raw, esc, ok = s.str()
		return kindString, raw, esc, ok
	case '{':
		return kindObject, nil, false, s.object(nil)
	case '[':
		return kindArray, nil, false, s.array(nil)
	case 't':
		return kindBool, nil, false, s.literal("true")
	case 'f':
		return kindBool, nil, false, s.literal("false")
	case 'n':
		return kindNull, nil, false, s.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			raw, ok = s.number()
			return kindNumber, raw, false, ok
		}
		return kindAbsent, nil, false, s.unexpected("looking for beginning of value")
	}
}

func (s *scanner) literal(lit string) bool {
	for j := 0; j < len(lit); j++ {
		if s.i >= len(s.b) {
			return s.eof()
		}
		if s.b[s.i] != lit[j] {
			return s.unexpected("in literal " + lit)
		}
		s.i++
	}
	return true
}

// number scans a number with JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() ([]byte, bool) {
	b, start := s.b, s.i
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i >= len(b):
		return nil, s.eof()
	case b[s.i] == '0':
		s.i++
	case b[s.i] >= '1' && b[s.i] <= '9':
		s.digits()
	default:
		return nil, s.unexpected("in numeric literal")
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if !s.atDigit() {
			return nil, s.unexpected("after decimal point in numeric literal")
		}
		s.digits()
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if !s.atDigit() {
			return nil, s.unexpected("in exponent of numeric literal")
		}
		s.digits()
	}
	return b[start:s.i], true
}

func (s *scanner) atDigit() bool { return s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' }

func (s *scanner) digits() {
	for s.atDigit() {
		s.i++
	}
}

// str scans a string whose opening quote is at s.i.
func (s *scanner) str() (raw []byte, esc, ok bool) {
	b := s.b
	s.i++
	start := s.i
	for s.i < len(b) {
		c := b[s.i]
		switch {
		case c == '"':
			raw = b[start:s.i]
			s.i++
			return raw, esc, true
		case c == '\\':
			esc = true
			if s.i+1 >= len(b) {
				s.i++
				return nil, false, s.eof()
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				s.i += 2
				for range 4 {
					if s.i >= len(b) {
						return nil, false, s.eof()
					}
					if hexVal(b[s.i]) < 0 {
						return nil, false, s.unexpected(`in \u hexadecimal character escape`)
					}
					s.i++
				}
			default:
				s.i++
				return nil, false, s.unexpected("in string escape code")
			}
		case c < 0x20:
			return nil, false, s.unexpected("in string literal")
		default:
			if c >= utf8.RuneSelf {
				esc = true
			}
			s.i++
		}
	}
	return nil, false, s.eof()
}

// object scans an object whose '{' is at s.i. When ev is not nil, the
// values of the fields it knows are recorded in it; a repeated key
// overwrites the earlier value (the last one wins, as in encoding/json).
func (s *scanner) object(ev *rawEvent) bool {
	if s.depth++; s.depth > maxDepth {
		return s.fail("exceeded max depth")
	}
	s.i++
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.unexpected("looking for beginning of object key string")
		}
		key, kesc, ok := s.str()
		if !ok {
			return false
		}
		s.skipWS()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.unexpected("after object key")
		}
		s.i++
		s.skipWS()
		var f *rawField
		if ev != nil {
			if kesc {
				s.key = appendUnescaped(s.key[:0], key)
				key = s.key
			}
			f = ev.field(key)
		}
		k, raw, esc, ok := s.value()
		if !ok {
			return false
		}
		if f != nil {
			*f = rawField{kind: k, raw: raw, esc: esc}
		}
		s.skipWS()
		if s.i >= len(s.b) {
			return s.eof()
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.skipWS()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return s.unexpected("after object key:value pair")
		}
	}
}

// array scans an array whose '[' is at s.i. elem, when not nil, scans each
// element instead of value (it must leave s.i just after the element and
// return false on failure).
func (s *scanner) array(elem func() bool) bool {
	if s.depth++; s.depth > maxDepth {
		return s.fail("exceeded max depth")
	}
	s.i++
	s.skipWS()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		var ok bool
		if elem != nil {
			ok = elem()
		} else {
			_, _, _, ok = s.value()
		}
		if !ok {
			return false
		}
		s.skipWS()
		if s.i >= len(s.b) {
			return s.eof()
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.skipWS()
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return s.unexpected("after array element")
		}
	}
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the four hex digits of a \u escape (already validated).
func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// appendUnescaped appends the decoded contents of a string that str
// accepted. It decodes the way encoding/json does: a \u escape of a lone
// or mismatched UTF-16 surrogate, and each byte of invalid UTF-8, become
// U+FFFD.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
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
			case 'u':
				r := hex4(raw[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = hex4(raw[i+2:])
					}
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						r = pair
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}
