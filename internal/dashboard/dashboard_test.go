package dashboard

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func embedded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(dist, "dist/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkSecurityHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' ws://example.com wss://example.com;", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") || strings.Contains(csp, "data:") {
		t.Errorf("Content-Security-Policy %q allows more than the page's own origin", csp)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

func TestIndex(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/index.html"} {
		w := get(t, h, "GET", p)
		if w.Code != 200 {
			t.Fatalf("GET %s = %d", p, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type = %q", p, ct)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control = %q, want no-cache", p, cc)
		}
		if w.Header().Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", p)
		}
		checkSecurityHeaders(t, w)
		if !bytes.Equal(w.Body.Bytes(), embedded(t, "index.html")) {
			t.Errorf("GET %s did not serve index.html", p)
		}
	}
}

// assetsOf lists the /assets/ files index.html references.
func assetsOf(t *testing.T) []string {
	t.Helper()
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(string(embedded(t, "index.html")), -1)
	var out []string
	for _, m := range refs {
		out = append(out, m[1])
	}
	return out
}

func TestAssets(t *testing.T) {
	h := Handler()
	assets := assetsOf(t)
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	seen := map[string]bool{}
	for _, a := range assets {
		ext := a[strings.LastIndexByte(a, '.'):]
		seen[ext] = true
		w := get(t, h, "GET", a)
		if w.Code != 200 {
			t.Fatalf("GET %s = %d: index.html references a file that is not embedded", a, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != types[ext] {
			t.Errorf("GET %s: Content-Type = %q, want %q", a, ct, types[ext])
		}
		if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control = %q", a, cc)
		}
		if !regexp.MustCompile(`-[A-Za-z0-9_-]{8}\.[a-z]+$`).MatchString(a) {
			t.Errorf("%s has no content hash in its name, yet is cached for a year", a)
		}
		if !bytes.Equal(w.Body.Bytes(), embedded(t, strings.TrimPrefix(a, "/"))) {
			t.Errorf("GET %s: wrong body", a)
		}
		checkSecurityHeaders(t, w)
	}
	for _, ext := range []string{".js", ".css"} {
		if !seen[ext] {
			t.Errorf("index.html references no %s asset: %v", ext, assets)
		}
	}
}

func TestGzipAndRevalidation(t *testing.T) {
	h := Handler()
	for _, p := range append([]string{"/"}, assetsOf(t)...) {
		plain := get(t, h, "GET", p)
		w := get(t, h, "GET", p, "Accept-Encoding", "br, gzip;q=0.8")
		switch {
		case w.Header().Get("Content-Encoding") == "gzip":
			if !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
				t.Errorf("GET %s: Vary = %q", p, w.Header().Get("Vary"))
			}
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(b, plain.Body.Bytes()) {
				t.Errorf("GET %s: gzip body differs from the plain one (%v)", p, err)
			}
			if w.Header().Get("ETag") == plain.Header().Get("ETag") {
				t.Errorf("GET %s: gzip and plain bodies share the ETag %s", p, w.Header().Get("ETag"))
			}
		case !strings.HasSuffix(p, ".svg"): // a tiny icon may not be worth compressing; the rest is
			t.Errorf("GET %s with gzip: Content-Encoding = %q", p, w.Header().Get("Content-Encoding"))
		}
		if got := get(t, h, "GET", p, "Accept-Encoding", "gzip;q=0").Header().Get("Content-Encoding"); got != "" {
			t.Errorf("GET %s with gzip;q=0: Content-Encoding = %q", p, got)
		}
		nm := get(t, h, "GET", p, "If-None-Match", plain.Header().Get("ETag"))
		if nm.Code != http.StatusNotModified || nm.Body.Len() != 0 {
			t.Errorf("GET %s with its ETag = %d (%d bytes), want 304", p, nm.Code, nm.Body.Len())
		}
	}
}

func TestHead(t *testing.T) {
	w := get(t, Handler(), "HEAD", "/")
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HEAD / = %d, %d bytes, %q", w.Code, w.Body.Len(), w.Header().Get("Content-Type"))
	}
}

func TestUnknownPathsAreJSON404s(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nowhere", "/assets/nope.js", "/index.htm", "/assets/", "/dist/index.html"} {
		w := get(t, h, "GET", p)
		var e struct{ Error string }
		if w.Code != 404 || w.Header().Get("Content-Type") != "application/json" || json.Unmarshal(w.Body.Bytes(), &e) != nil ||
			e.Error != "no such endpoint: "+p {
			t.Errorf("GET %s = %d %q %s; want the API's JSON 404", p, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
	w := get(t, h, "POST", "/")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestCSPIgnoresHostileHost(t *testing.T) {
	for host, want := range map[string]string{
		"example.com:8080":        "connect-src 'self' ws://example.com:8080 wss://example.com:8080;",
		"[::1]:8080":              "connect-src 'self' ws://[::1]:8080 wss://[::1]:8080;",
		"evil; script-src *":      "connect-src 'self';",
		"a.com default-src data:": "connect-src 'self';",
		"":                        "connect-src 'self';",
	} {
		if got := csp(host); !strings.Contains(got, want) {
			t.Errorf("csp(%q) = %q, want %q in it", host, got, want)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "br, gzip": true, "gzip;q=0": false, "gzip; q=0.000": false,
		"gzip;q=0.5": true, "deflate, br": false, "x-gzip": false, "*": false,
	} {
		if got := acceptsGzip(ae); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}
