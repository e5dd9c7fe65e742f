// Package httperror writes dynaprice's one error shape, {"error": "..."},
// for every HTTP surface (API, WebSocket handshake, dashboard), so clients
// parse a single format whatever answered them.
package httperror

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Write sends status with {"error": msg}. msg must be safe to show a client.
func Write(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
