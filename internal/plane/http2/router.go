package http2

import (
	"context"
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

// ServeHTTP serves HTTP/1.1 requests (h2c connections are served by serverConn).
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := rt.now()
	rte, ref := rt.check(r.Method, r.URL.Path, r.ContentLength, start)
	if ref == nil {
		body, err := readBody(http.MaxBytesReader(w, r.Body, int64(rt.max)), r.ContentLength, rt.max)
		if err != nil {
			ref = rt.bodyRefusal(err, rte, start)
		} else {
			ref = rt.admit(rte, body, r.Header.Get, start)
		}
	}
	if ref != nil {
		rt.refused(ref, r.Method, r.URL.Path)
		h := w.Header()
		if ref.allow {
			h.Set("Allow", http.MethodPost)
		}
		h.Set("Content-Type", textPlain)
		h.Set("Content-Length", strconv.Itoa(len(ref.text)))
		w.WriteHeader(ref.status)
		_, _ = io.WriteString(w, ref.text)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// textPlain is the content type of refusals.
const textPlain = "text/plain; charset=utf-8"

// now is the start of an observed request; the zero time when nothing observes.
func (rt *router) now() time.Time {
	if rt.observe != nil {
		return time.Now()
	}
	return time.Time{}
}

// check routes a request before its body is read: the route, or why it is refused.
// contentLength is -1 when unknown.
func (rt *router) check(method, path string, contentLength int64, start time.Time) (route, *refusal) {
	name, ok := rt.endpointName(path)
	if !ok {
		return route{}, &refusal{status: http.StatusNotFound, code: plane.CodeUnknownEndpoint, text: plane.TextEndpointNotFound, start: start}
	}
	if method != http.MethodPost {
		// Like Dynamo's router: an empty 405 naming the one method served.
		return route{}, &refusal{status: http.StatusMethodNotAllowed, code: plane.CodeRefused, allow: true, start: start}
	}
	rte, ok := rt.lookup(name)
	if !ok {
		return route{}, &refusal{status: http.StatusNotFound, code: plane.CodeUnknownEndpoint, text: plane.TextEndpointNotFound, start: start}
	}
	if contentLength > int64(rt.max) {
		// Refused before reading a byte of the body.
		err := tooLarge(uint64(contentLength), rt.max)
		return route{}, &refusal{status: http.StatusRequestEntityTooLarge, code: plane.CodeTooLarge, text: err.Error(), err: err, ep: rte.ep, start: start}
	}
	return rte, nil
}

// bodyRefusal is the refusal of a body that could not be read whole: too large, or I/O.
func (rt *router) bodyRefusal(err error, rte route, start time.Time) *refusal {
	status, code := http.StatusBadRequest, plane.CodeBadRequest
	if errors.Is(err, codec.ErrMessageTooLarge) {
		status, code = http.StatusRequestEntityTooLarge, plane.CodeTooLarge
	}
	return &refusal{status: status, code: code, text: err.Error(), err: err, ep: rte.ep, start: start}
}

// admit decodes a whole body and hands the request to the route's handler; nil means
// accepted (answered 202). get reads the request's headers by lowercase name.
func (rt *router) admit(rte route, body []byte, get func(string) string, start time.Time) *refusal {
	req, err := plane.DecodeFor(rte.h, body, rt.max)
	if err != nil {
		code, text := plane.Refusal(err)
		return &refusal{status: statusOf(code), code: code, text: text, err: err, ep: rte.ep, start: start}
	}
	req.Plane = plane.NameHTTP
	req.Endpoint = rte.ep
	req.Meta = plane.MetaFromHeaders(get, req.Control.ID)
	if err := rte.h.Accept(req); err != nil {
		code, text := plane.Refusal(err)
		return &refusal{status: statusOf(code), code: code, text: text, err: err, ep: rte.ep, start: start}
	}
	if rt.observe != nil {
		rt.observe(&plane.Outcome{Plane: plane.NameHTTP, Endpoint: rte.ep, Status: http.StatusAccepted, Start: start})
	}
	return nil
}

// refusal is one refused request: what is answered, and what the observer is told.
type refusal struct {
	status int
	code   plane.Code
	text   string
	allow  bool           // a 405: answer "Allow: POST"
	err    error          // the cause; nil: built from code and text for the observer
	ep     plane.Endpoint // zero when no route matched
	start  time.Time
}

// refused tells the observer and the debug log about a refusal; the caller answers it with
// the status and the spec's text as a plain-text body.
func (rt *router) refused(ref *refusal, method, path string) {
	if rt.observe != nil {
		err := ref.err
		if err == nil {
			err = &plane.Error{Plane: plane.NameHTTP, Code: ref.code, Status: ref.status, Text: ref.text}
		}
		rt.observe(&plane.Outcome{Plane: plane.NameHTTP, Endpoint: ref.ep, Code: ref.code, Status: ref.status, Err: err, Start: ref.start})
	}
	rt.log.LogAttrs(context.Background(), slog.LevelDebug, "http request refused",
		slog.String("method", method), slog.String("path", path),
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
