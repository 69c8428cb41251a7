// Package web holds the browser client (web/client, the npm package
// @groupcast/client) and the demo app (web/demo), embedded so the local
// stack can serve them with no build step.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

// The client's published files (as its package.json "files" lists them)
// and the demo; tests and node_modules stay out.
//
//go:embed client/package.json client/index.js client/index.d.ts client/src demo
var files embed.FS

// Config tells the demo where the stack is. All three are absolute URLs.
type Config struct {
	HTTPAPI   string `json:"httpApi"`   // base URL including the stage
	WebSocket string `json:"webSocket"` // ws://host:port/stage
	Tokens    string `json:"tokens"`    // POST {"sub","name"} here for a development token
}

// FS returns the embedded files: client/... and demo/....
func FS() fs.FS { return files }

// Handler serves the demo at /demo/ (its config at /demo/config.json) and
// the client at /client/; / redirects to the demo.
func Handler(cfg Config) http.Handler {
	cfgJSON, _ := json.Marshal(cfg) // strings only: cannot fail
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(cfgJSON)
	})
	files := http.FileServerFS(files)
	// no-cache: a developer editing the demo sees the change on reload
	// (the files are embedded at build time, but devstack is rebuilt often).
	mux.Handle("GET /client/", noCache(files))
	mux.Handle("GET /demo/", noCache(files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/demo/", http.StatusFound)
	})
	return mux
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
