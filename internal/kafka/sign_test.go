package kafka

import (
	"strings"
	"testing"
)

// testSigner signs the tests' control records.
var testSigner = func() *Signer {
	s, err := ParseSigner("test:" + strings.Repeat("s", MinControlKeyLen))
	if err != nil {
		panic(err)
	}
	return s
}()

func TestSignerVerifiesAndRotates(t *testing.T) {
	oldKey, newKey := "old:"+strings.Repeat("o", 32), "new:"+strings.Repeat("n", 32)
	before, err := ParseSigner(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	during, err := ParseSigner(newKey + ", " + oldKey) // the new key signs, both verify
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseSigner(newKey)
	if err != nil {
		t.Fatal(err)
	}
	kind, key, value := ControlOverride, []byte("PA"), []byte(`{"product_id":"PA","override_price":1}`)
	oldSig, newSig := before.sign(kind, key, value), during.sign(kind, key, value)
	for _, c := range []struct {
		s    *Signer
		sig  []byte
		want string
	}{
		{during, oldSig, ""},
		{during, newSig, ""},
		{after, newSig, ""},
		{after, oldSig, "unknown key"},
		{before, nil, "unsigned"},
		{before, []byte("old:zz"), "malformed"},
		{before, []byte("nocolon"), "malformed"},
	} {
		err := c.s.verify(kind, key, value, c.sig)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("verify(%q) = %v, want %q", c.sig, err, c.want)
		}
	}
	for what, v := range map[string][3][]byte{
		"another value": {[]byte(kind), key, []byte(`{"product_id":"PA","override_price":0.01}`)},
		"another key":   {[]byte(kind), []byte("PB"), value},
		"another kind":  {[]byte(ControlOverrideClear), key, value},
	} {
		if err := during.verify(string(v[0]), v[1], v[2], newSig); err == nil || !strings.Contains(err.Error(), "forged") {
			t.Errorf("%s with a copied signature: %v, want forged", what, err)
		}
	}
	for _, bad := range []string{"", "x:short", "nosecret", ":" + strings.Repeat("s", 32), "a:" + strings.Repeat("s", 32) + ",a:" + strings.Repeat("t", 32)} {
		if _, err := ParseSigner(bad); err == nil {
			t.Errorf("ParseSigner(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "sss") || strings.Contains(err.Error(), "ttt") {
			t.Errorf("ParseSigner(%q) error shows the secret: %v", bad, err)
		}
	}
}
