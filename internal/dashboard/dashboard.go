// Package dashboard serves the live web dashboard: the static files built
// from web/ (TypeScript, Vite) and committed under dist/, embedded in the
// binary so that `dynaprice serve` needs nothing else.
//
// Rebuild dist/ with `npm run build` in web/; web/check-dist.sh fails when
// the committed files differ from a fresh build.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/httperror"
)

//go:embed dist
var dist embed.FS

// file is one embedded file, ready to serve.
type file struct {
	body, gz    []byte // gz is nil when compression does not pay
	ctype       string
	cache       string
	etag, gzTag string
}

var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".json":  "application/json",
	".txt":   "text/plain; charset=utf-8",
	".woff2": "font/woff2",
}

const (
	// Files under assets/ carry a content hash in their name, so they never
	// change: browsers may keep them for a year without asking again.
	cacheImmutable = "public, max-age=31536000, immutable"
	// Everything else, index.html above all, is revalidated on every load
	// (cheaply, with the ETag), so a new binary's dashboard shows at once.
	cacheRevalidate = "no-cache"
)

// Handler serves the dashboard: index.html at "/", the assets it references,
// and a JSON 404 like the API's for any other path.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // cannot happen: dist is embedded
	}
	return newHandler(sub)
}

type handler struct {
	files map[string]*file
}

func newHandler(fsys fs.FS) *handler {
	h := &handler{files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f := &file{body: body, ctype: contentTypes[path.Ext(p)], cache: cacheRevalidate, etag: etag(body, "")}
		if f.ctype == "" {
			f.ctype = "application/octet-stream"
		}
		if strings.HasPrefix(p, "assets/") {
			f.cache = cacheImmutable
		}
		if gz := compress(body); len(gz) < len(body)*9/10 {
			f.gz, f.gzTag = gz, etag(body, "-gz")
		}
		h.files["/"+p] = f
		return nil
	})
	if err != nil {
		panic(err) // cannot happen: the embedded tree is readable
	}
	return h
}

func etag(b []byte, suffix string) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + suffix + `"`
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// csp allows the page's own scripts, styles and images, and connections back
// to the same host over HTTP(S) and WebSocket; nothing inline, no framing.
// The WebSocket origins are spelled out because 'self' does not cover ws:
// and wss: in every browser.
func csp(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src " + connect +
		"; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
}

// validHost reports whether host is safe to put in a header: a host name or
// IP address with an optional port, nothing that could end a directive.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)
		if !ok {
			return false
		}
	}
	return true
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp(r.Host))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	p := r.URL.Path
	if p == "/" {
		p = "/index.html"
	}
	f, ok := h.files[p]
	if !ok {
		notFound(w, r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		httperror.Write(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; allowed: GET, HEAD")
		return
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", f.cache)
	body, tag := f.body, f.etag
	if f.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, tag = f.gz, f.gzTag
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("ETag", tag)
	// ServeContent answers If-None-Match with 304, HEAD and ranges.
	http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: it is
// listed, without q=0.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(params), "=")
		if strings.TrimSpace(k) != "q" {
			return true
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err != nil || q > 0
	}
	return false
}

// notFound answers as the API does for unknown paths.
func notFound(w http.ResponseWriter, p string) {
	httperror.Write(w, http.StatusNotFound, "no such endpoint: "+p)
}
