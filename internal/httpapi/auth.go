package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// Role is what an API key may do.
type Role uint8

// Roles. Admin may do everything; operator also reads; ingest only posts
// events, so a shop's event feed cannot change prices by hand.
const (
	RoleViewer Role = iota + 1
	RoleOperator
	RoleIngest
	RoleAdmin
)

// ParseRole maps a role name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "ingest":
		return RoleIngest, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("unknown role %q (want viewer, operator, ingest or admin)", s)
}

func (r Role) String() string {
	return [...]string{"", "viewer", "operator", "ingest", "admin"}[r]
}

type permission uint8

const (
	permRead permission = iota + 1
	permOverride
	permIngest
	permAdmin
)

func (r Role) can(p permission) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleOperator:
		return p == permRead || p == permOverride
	case RoleViewer:
		return p == permRead
	case RoleIngest:
		return p == permIngest
	}
	return false
}

// Key is one API key. Name is what audit trails record (never the secret).
type Key struct {
	Name   string
	Role   Role
	Secret string
}

// ParseKeys parses "name:role:secret" entries separated by commas or
// newlines, as given in DYNAPRICE_API_KEYS or a keys file.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		parts := strings.SplitN(f, ":", 3)
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
			return nil, fmt.Errorf("api key entry %q: want name:role:secret", redact(f))
		}
		role, err := ParseRole(parts[1])
		if err != nil {
			return nil, fmt.Errorf("api key %q: %w", parts[0], err)
		}
		keys = append(keys, Key{Name: parts[0], Role: role, Secret: parts[2]})
	}
	return keys, nil
}

// MinKeyLen is the shortest API key secret accepted unless the operator
// insists (CheckKeys): 16 bytes, so that guessing is hopeless at any
// request rate.
const MinKeyLen = 16

// CheckKeys refuses secrets shorter than MinKeyLen, unless allowShort, and
// secrets with surrounding whitespace, which could never match: HTTP trims
// header values. Errors name the key, never the secret.
func CheckKeys(keys []Key, allowShort bool) error {
	for _, k := range keys {
		switch {
		case k.Secret != strings.TrimSpace(k.Secret):
			return fmt.Errorf("api key %q: the secret has whitespace around it, which no request header can carry", k.Name)
		case len(k.Secret) < MinKeyLen && !allowShort:
			return fmt.Errorf("api key %q: the secret is %d bytes; use at least %d (e.g. openssl rand -hex 24), or allow short keys explicitly for a test setup", k.Name, len(k.Secret), MinKeyLen)
		}
	}
	return nil
}

// redact keeps a malformed entry's name for the error message but never its
// secret.
func redact(entry string) string {
	if i := strings.IndexByte(entry, ':'); i >= 0 {
		return entry[:i] + ":…"
	}
	return "…"
}

// keyring checks presented keys in constant time: every stored key is
// compared (by SHA-256 digest, so lengths leak nothing) whatever matches.
type keyring struct {
	keys    []Key
	digests [][sha256.Size]byte
}

func newKeyring(keys []Key) *keyring {
	k := &keyring{keys: keys}
	for _, key := range keys {
		k.digests = append(k.digests, sha256.Sum256([]byte(key.Secret)))
	}
	return k
}

func (k *keyring) lookup(presented string) (Key, bool) {
	d := sha256.Sum256([]byte(presented))
	found := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(d[:], k.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return k.keys[found], true
}
