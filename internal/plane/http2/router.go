package http2

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

type route struct {
	ep plane.Endpoint
	h  plane.Handler
}

// router is the Server's http.Handler: it routes POST {root}/{name}, reads and checks the
// frame, and admits it through the endpoint's plane.Handler.
type router struct {
	root    string // "" or "/a/b"
	max     int
	log     *slog.Logger
	observe plane.ObserveFunc // nil: not observed

	mu     sync.Mutex                       // serializes writers; readers only Load
	routes atomic.Pointer[map[string]route] // copy-on-write: Add/Remove are rare, lookups hot
}

func (rt *router) lookup(name string) (route, bool) {
	m := rt.routes.Load()
	if m == nil {
		return route{}, false
	}
	r, ok := (*m)[name]
	return r, ok
}

func (rt *router) add(ep plane.Endpoint, h plane.Handler) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	next := map[string]route{}
	if m := rt.routes.Load(); m != nil {
		if cur, ok := (*m)[ep.Name]; ok && (cur.ep.Namespace != ep.Namespace || cur.ep.Component != ep.Component) {
			return fmt.Errorf("%w: %q is served for %s/%s", ErrEndpointConflict, ep.Name, cur.ep.Namespace, cur.ep.Component)
		}
		next = maps.Clone(*m)
	}
	next[ep.Name] = route{ep: ep, h: h}
	rt.routes.Store(&next)
	return nil
}

func (rt *router) remove(ep plane.Endpoint) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	m := rt.routes.Load()
	if m == nil {
		return
	}
	if cur, ok := (*m)[ep.Name]; !ok || cur.ep != ep {
		return
	}
	next := maps.Clone(*m)
	delete(next, ep.Name)
	rt.routes.Store(&next)
}

// endpointName returns the endpoint name of a path under the root.
func (rt *router) endpointName(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, rt.root+"/")
	return rest, ok && rest != ""
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var start time.Time
	if rt.observe != nil {
		start = time.Now()
	}
	name, ok := rt.endpointName(r.URL.Path)
	if !ok {
		rt.refuse(w, r, refusal{status: http.StatusNotFound, code: plane.CodeUnknownEndpoint, text: plane.TextEndpointNotFound, start: start})
		return
	}
	if r.Method != http.MethodPost {
		// Like Dynamo's router: an empty 405 naming the one method served.
		w.Header().Set("Allow", http.MethodPost)
		rt.refuse(w, r, refusal{status: http.StatusMethodNotAllowed, code: plane.CodeRefused, start: start})
		return
	}
	rte, ok := rt.lookup(name)
	if !ok {
		rt.refuse(w, r, refusal{status: http.StatusNotFound, code: plane.CodeUnknownEndpoint, text: plane.TextEndpointNotFound, start: start})
		return
	}
	if r.ContentLength > int64(rt.max) {
		// Refused before reading a byte of the body.
		err := tooLarge(uint64(r.ContentLength), rt.max)
		rt.refuse(w, r, refusal{status: http.StatusRequestEntityTooLarge, code: plane.CodeTooLarge, text: err.Error(), err: err, ep: rte.ep, start: start})
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, int64(rt.max)), r.ContentLength, rt.max)
	if err != nil {
		status, code := http.StatusBadRequest, plane.CodeBadRequest
		if errors.Is(err, codec.ErrMessageTooLarge) {
			status, code = http.StatusRequestEntityTooLarge, plane.CodeTooLarge
		}
		rt.refuse(w, r, refusal{status: status, code: code, text: err.Error(), err: err, ep: rte.ep, start: start})
		return
	}
	req, err := plane.Decode(body, rt.max)
	if err != nil {
		code, text := plane.Refusal(err)
		rt.refuse(w, r, refusal{status: statusOf(code), code: code, text: text, err: err, ep: rte.ep, start: start})
		return
	}
	req.Plane = plane.NameHTTP
	req.Endpoint = rte.ep
	req.Meta = plane.MetaFromHeaders(r.Header.Get, req.Control.ID)
	if err := rte.h.Accept(req); err != nil {
		code, text := plane.Refusal(err)
		rt.refuse(w, r, refusal{status: statusOf(code), code: code, text: text, err: err, ep: rte.ep, start: start})
		return
	}
	if rt.observe != nil {
		rt.observe(&plane.Outcome{Plane: plane.NameHTTP, Endpoint: rte.ep, Status: http.StatusAccepted, Start: start})
	}
	w.WriteHeader(http.StatusAccepted)
}

// refusal is one refused request: what is answered, and what the observer is told.
type refusal struct {
	status int
	code   plane.Code
	text   string
	err    error          // the cause; nil: built from code and text for the observer
	ep     plane.Endpoint // zero when no route matched
	start  time.Time
}

// refuse answers a refusal: status and the spec's text as a plain-text body.
func (rt *router) refuse(w http.ResponseWriter, r *http.Request, ref refusal) {
	if rt.observe != nil {
		err := ref.err
		if err == nil {
			err = &plane.Error{Plane: plane.NameHTTP, Code: ref.code, Status: ref.status, Text: ref.text}
		}
		rt.observe(&plane.Outcome{Plane: plane.NameHTTP, Endpoint: ref.ep, Code: ref.code, Status: ref.status, Err: err, Start: ref.start})
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(ref.text)))
	w.WriteHeader(ref.status)
	_, _ = io.WriteString(w, ref.text)
	rt.log.LogAttrs(r.Context(), slog.LevelDebug, "http request refused",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", ref.status), slog.String("text", ref.text))
}

// statusOf maps a refusal's code to its HTTP status (spec §5.1).
func statusOf(c plane.Code) int {
	switch c {
	case plane.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case plane.CodeOverloaded, plane.CodeDraining:
		return http.StatusServiceUnavailable
	case plane.CodeUnknownEndpoint:
		return http.StatusNotFound
	default:
		return http.StatusBadRequest
	}
}
