package kafka

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// HeaderSignature, on a control record, is "<key id>:<hex HMAC-SHA256>" of
// the record's kind, key and value (see Signer).
const HeaderSignature = "dynaprice-signature"

// MinControlKeyLen is the shortest control signing secret accepted.
const MinControlKeyLen = 32

// Signer signs control records with HMAC-SHA256 and verifies them, so that
// only a holder of the key (dynaprice's API replicas and engines) can set
// a price or change the catalog through Kafka; a shop's event producer,
// which may write any record to any topic it can reach, cannot.
//
// It holds one or more keys, each with an id: records are signed with the
// first and verified with whichever their signature names, so a key is
// rotated by adding the new one first on every process, then, once the
// control records signed with the old one are consumed, removing the old.
type Signer struct {
	keys []signKey
}

type signKey struct {
	id     string
	secret []byte
}

// ParseSigner parses "id:secret[,id:secret...]" (DYNAPRICE_CONTROL_KEYS);
// each secret is at least MinControlKeyLen bytes. Errors never show a
// secret.
func ParseSigner(s string) (*Signer, error) {
	var sg Signer
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, secret, ok := strings.Cut(f, ":")
		id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
		switch {
		case !ok || id == "" || secret == "":
			return nil, fmt.Errorf("control key %q: want id:secret", redact(f))
		case strings.ContainsAny(id, ": "):
			return nil, fmt.Errorf("control key %q: the id may not contain ':' or spaces", id)
		case len(secret) < MinControlKeyLen:
			return nil, fmt.Errorf("control key %q: the secret is %d bytes; use at least %d (e.g. openssl rand -hex 32)", id, len(secret), MinControlKeyLen)
		case seen[id]:
			return nil, fmt.Errorf("control key %q appears twice", id)
		}
		seen[id] = true
		sg.keys = append(sg.keys, signKey{id: id, secret: []byte(secret)})
	}
	if len(sg.keys) == 0 {
		return nil, errors.New("no control key: set DYNAPRICE_CONTROL_KEYS to id:secret (the same on every engine and API replica)")
	}
	return &sg, nil
}

func redact(entry string) string {
	if i := strings.IndexByte(entry, ':'); i >= 0 {
		return entry[:i] + ":…"
	}
	return "…"
}

func mac(secret []byte, kind string, key, value []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(key)
	h.Write([]byte{0})
	h.Write(value)
	return h.Sum(nil)
}

// sign returns the signature header value of a control record.
func (s *Signer) sign(kind string, key, value []byte) []byte {
	k := s.keys[0]
	sum := mac(k.secret, kind, key, value)
	out := make([]byte, 0, len(k.id)+1+hex.EncodedLen(len(sum)))
	out = append(out, k.id...)
	out = append(out, ':')
	return hex.AppendEncode(out, sum)
}

// verify checks a control record's signature, in constant time for a
// given key.
func (s *Signer) verify(kind string, key, value, sig []byte) error {
	if len(sig) == 0 {
		return errors.New("unsigned control record")
	}
	id, hexSum, ok := strings.Cut(string(sig), ":")
	if !ok {
		return errors.New("malformed " + HeaderSignature + " header")
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return errors.New("malformed " + HeaderSignature + " header")
	}
	for _, k := range s.keys {
		if k.id == id {
			if !hmac.Equal(got, mac(k.secret, kind, key, value)) {
				return errors.New("forged control record: the signature does not match")
			}
			return nil
		}
	}
	return fmt.Errorf("control record signed with unknown key %q", id)
}
