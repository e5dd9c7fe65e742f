package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrdersByVersion(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"migrations/0010_ten.sql": {Data: []byte("ten")},
		"migrations/0002_two.sql": {Data: []byte("two")},
		"migrations/0001_one.sql": {Data: []byte("one")},
		"migrations/README":       {Data: []byte("ignored")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].Version != 1 || ms[1].Name != "0002_two" || ms[2].Version != 10 || ms[2].SQL != "ten" {
		t.Errorf("Load = %+v", ms)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"same version": {"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}},
		"no version":   {"migrations/init.sql": {}},
		"zero version": {"migrations/0000_init.sql": {}},
		"none":         {},
	} {
		if _, err := Load(fsys); err == nil {
			t.Errorf("%s: Load succeeded", name)
		} else if name == "same version" && !strings.Contains(err.Error(), "same version") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
