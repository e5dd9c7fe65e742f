package httpapi

import (
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	keys, err := ParseKeys("alice:operator:s1, feed:ingest:s:with:colons\n# comment\nbob:viewer:s3")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[1].Secret != "s:with:colons" || keys[1].Role != RoleIngest || keys[2].Name != "bob" {
		t.Fatalf("keys = %+v", keys)
	}
	for _, bad := range []string{"alice:operator", "alice:root:TOPSECRET", ":viewer:TOPSECRET", "a:viewer:", "nocolons-TOPSECRET"} {
		_, err := ParseKeys(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("%q: error leaks the secret: %v", bad, err)
		}
	}
}

func TestRolePermissions(t *testing.T) {
	want := map[Role][]permission{
		RoleViewer:   {permRead},
		RoleOperator: {permRead, permOverride},
		RoleIngest:   {permIngest},
		RoleAdmin:    {permRead, permOverride, permIngest, permAdmin},
	}
	for role, perms := range want {
		for _, p := range []permission{permRead, permOverride, permIngest, permAdmin} {
			allowed := false
			for _, q := range perms {
				allowed = allowed || q == p
			}
			if role.can(p) != allowed {
				t.Errorf("%s can %d = %v, want %v", role, p, role.can(p), allowed)
			}
		}
	}
}

func TestKeyringLookup(t *testing.T) {
	k := newKeyring([]Key{{Name: "a", Role: RoleAdmin, Secret: "secret-a"}, {Name: "b", Role: RoleViewer, Secret: "secret-b"}})
	if got, ok := k.lookup("secret-b"); !ok || got.Name != "b" {
		t.Fatalf("lookup = %+v %v", got, ok)
	}
	for _, bad := range []string{"", "secret", "secret-a ", "SECRET-A"} {
		if _, ok := k.lookup(bad); ok {
			t.Errorf("%q matched", bad)
		}
	}
}

func TestCheckKeysRefusesShortAndPaddedSecrets(t *testing.T) {
	long := strings.Repeat("k", MinKeyLen)
	if err := CheckKeys([]Key{{Name: "a", Secret: long}}, false); err != nil {
		t.Errorf("a %d-byte secret: %v", MinKeyLen, err)
	}
	short := []Key{{Name: "a", Secret: long[1:]}}
	if err := CheckKeys(short, false); err == nil || !strings.Contains(err.Error(), `"a"`) || strings.Contains(err.Error(), long[1:]) {
		t.Errorf("a short secret: %v, want an error naming the key, not the secret", err)
	}
	if err := CheckKeys(short, true); err != nil {
		t.Errorf("a short secret, allowed: %v", err)
	}
	if err := CheckKeys([]Key{{Name: "a", Secret: " " + long}}, true); err == nil {
		t.Error("a secret with a leading space was accepted; no header can carry it")
	}
	keys, err := ParseKeys(" ops : operator : " + long + " ")
	if err != nil || keys[0].Name != "ops" || keys[0].Secret != long {
		t.Errorf("ParseKeys with spaces around the fields = %+v, %v", keys, err)
	}
}
