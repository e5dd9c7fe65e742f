package httperror

import (
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, 418, "tea \"pot\" \x00 é")
	if rec.Code != 418 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got, want := rec.Body.String(), `{"error":"tea \"pot\" \u0000 é"}`+"\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}
