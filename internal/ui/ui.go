// Package ui holds the inspector, wsgate's web UI, and serves it. The UI is
// plain HTML, CSS and JavaScript modules embedded in the binary: nothing is
// built, fetched from a CDN or loaded from another origin. The assets hold
// no data; the page reads everything it shows from the management API with
// the bearer token it is given at its login screen.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is the policy every asset is served with: scripts,
// styles, images and API calls from the page's own origin only, no inline
// script or style elements, no plugins, and no framing by other pages.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// Handler serves the UI's assets at the paths Paths lists, relative to the
// root it is mounted at: a server strips its prefix (http.StripPrefix) and
// routes only those paths to it.
type Handler struct {
	// files are the assets by their path under the root, "" for
	// index.html.
	files map[string]*asset
}

var _ http.Handler = (*Handler)(nil)

// New returns the handler of the embedded assets.
func New() *Handler {
	h := &Handler{files: map[string]*asset{}}
	root, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{name: path.Base(p), contentType: contentType(p), etag: `"` + hex.EncodeToString(sum[:12]) + `"`, body: body}
		if p == "index.html" {
			p = ""
		}
		h.files[p] = a
		return nil
	})
	if err != nil {
		panic(err)
	}
	return h
}

// Paths returns the paths the handler serves, relative to its root and in
// sorted order: "" is the page itself (index.html), the others its assets
// ("app.js", "style.css", ...).
func (h *Handler) Paths() []string {
	var ps []string
	for p := range h.files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// ServeHTTP serves the asset at the request's path, relative to the root
// ("" for the page). An unknown asset is 404. Every answer carries the Content
// Security Policy and asks the browser to revalidate (Cache-Control:
// no-cache) with the asset's ETag, so that an upgraded gateway serves its
// new UI at once while unchanged assets cost a 304.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// contentType is the Content-Type of the asset at p, by its extension.
func contentType(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}
